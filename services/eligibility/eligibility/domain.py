"""Who a programme covers, and why not (DOMAIN.md §5, §6): pure functions, no I/O.

A decision is about one payment of the programme: the current or next one on the evaluation day
(the period ``YYYY-MM`` of a monthly programme, the next payment date of a top-up). Card, members,
ages and location are those in force on that payment's first day, as the calculator uses them.
Every reason that applies is given, so "why was this household not paid?" has a full answer.
"""

from collections.abc import Collection, Iterable, Sequence
from datetime import date
from enum import StrEnum
from typing import NamedTuple

from krousar_common.benefits import ConditionEvent, Entitlement, PaymentLine, assess_conditions, calculate
from krousar_common.events.eligibility import Enrolment
from krousar_common.events.households import (
    CardSnapshot,
    CardStatus,
    HouseholdSnapshot,
    HouseholdStatus,
    PovertyLevel,
)
from krousar_common.programmes import MonthlyCalendar, ProgrammeStatus, ProgrammeVersion, Target

from eligibility.household import Card, Household


class Reason(StrEnum):
    PROGRAMME_NOT_RUNNING = "PROGRAMME_NOT_RUNNING"
    HOUSEHOLD_WITHDRAWN = "HOUSEHOLD_WITHDRAWN"
    NOT_POOR = "NOT_POOR"
    OUTSIDE_TARGET_LEVEL = "OUTSIDE_TARGET_LEVEL"
    NO_ACTIVE_CARD = "NO_ACTIVE_CARD"
    CARD_EXPIRED = "CARD_EXPIRED"
    OUTSIDE_TARGET_AREA = "OUTSIDE_TARGET_AREA"
    OUTSIDE_TARGET_LOCATION = "OUTSIDE_TARGET_LOCATION"
    NOT_ENROLLED = "NOT_ENROLLED"
    NO_VULNERABLE_MEMBER = "NO_VULNERABLE_MEMBER"
    NOTHING_PAYABLE = "NOTHING_PAYABLE"


EXCLUDED_PREFIX = "EXCLUDED_BY_"
POOR_LEVELS = frozenset({PovertyLevel.POOR_1, PovertyLevel.POOR_2})
# Reasons that only enrolment at the commune hall can lift: a household with no other reason is
# "eligible" in the coverage funnel and becomes "enrolled" (paid) once enrolled.
ENROLMENT_ONLY = frozenset({Reason.NOT_ENROLLED.value})

# The validated model (tests, one-off checks) or the projection row as deciding reads it
# (eligibility.household): the same attributes, the same decisions.
AnyHousehold = HouseholdSnapshot | Household
PaidKeys = Collection[tuple[str, str]]
"""(programme code, payment key) of the household's payments reported PAID."""


def excluded_by(programme_code: str) -> str:
    return f"{EXCLUDED_PREFIX}{programme_code}"


# Decision and Payable are named tuples, not frozen dataclasses: a national run makes millions of
# them, and a frozen dataclass sets each field through object.__setattr__.
class Decision(NamedTuple):
    programme_code: str
    programme_version: int
    payment_key: str | None  # None: the programme has no current or next payment
    eligible: bool
    reasons: tuple[str, ...]
    amount_riel: int = 0
    lines: tuple[PaymentLine, ...] = ()
    entitlements: tuple[Entitlement, ...] = ()

    @property
    def targeted(self) -> bool:
        """Covered by the programme's rules, enrolled or not (the funnel's "eligible" stage)."""
        return self.eligible or set(self.reasons) <= ENROLMENT_ONLY


# --- which payment ---------------------------------------------------------------------------------


def payment_key_on(programme: ProgrammeVersion, day: date) -> str | None:
    """The programme's current or next payment on ``day``; None once its last payment is past."""
    calendar = programme.calendar
    if isinstance(calendar, MonthlyCalendar):
        period = max(f"{day.year:04d}-{day.month:02d}", calendar.start)
        return None if calendar.end is not None and period > calendar.end else period
    upcoming = [d for d in calendar.payment_dates if d >= day]
    return upcoming[0].isoformat() if upcoming else None


def payment_keys_in(programme: ProgrammeVersion, period: str) -> list[str]:
    """The programme's payments in a month: the period itself, or its payment dates in that month."""
    calendar = programme.calendar
    if isinstance(calendar, MonthlyCalendar):
        running = period >= calendar.start and (calendar.end is None or period <= calendar.end)
        return [period] if running else []
    return [d.isoformat() for d in calendar.payment_dates if d.isoformat().startswith(period + "-")]


# --- the decision ----------------------------------------------------------------------------------


def decide(
    programme: ProgrammeVersion,
    household: AnyHousehold,
    enrolment: Enrolment | None,
    on_day: date,
    *,
    conditions: Sequence[ConditionEvent] = (),
    paid: PaidKeys = (),
) -> Decision:
    """The household's decision for the programme's current or next payment on ``on_day``."""
    key = current_key(programme, on_day)
    return decide_key(programme, key, household, enrolment, conditions=conditions, paid=paid)


def current_key(programme: ProgrammeVersion, day: date) -> str | None:
    """The payment decided on ``day``; None when the programme is closed or its last payment is past."""
    return payment_key_on(programme, day) if programme.status is ProgrammeStatus.ACTIVE else None


def decide_key(
    programme: ProgrammeVersion,
    key: str | None,
    household: AnyHousehold,
    enrolment: Enrolment | None,
    *,
    conditions: Sequence[ConditionEvent] = (),
    paid: PaidKeys = (),
) -> Decision:
    """``decide`` with the payment found already (``current_key``): once per programme in a batch."""
    if key is None:
        return not_running(programme)
    return evaluate(programme, household, enrolment, key, conditions=conditions, paid=paid)


def not_running(programme: ProgrammeVersion) -> Decision:
    return Decision(programme.code, programme.version, None, False, (Reason.PROGRAMME_NOT_RUNNING.value,))


def evaluate(
    programme: ProgrammeVersion,
    household: AnyHousehold,
    enrolment: Enrolment | None,
    key: str,
    *,
    conditions: Sequence[ConditionEvent] = (),
    paid: PaidKeys = (),
) -> Decision:
    """The household's decision for one payment ``key`` of the programme."""
    day = programme.calendar.first_day(key)
    target = programme.target
    reasons = targeting_reasons(target, household, day)
    if target.requires_active_card:
        _add(reasons, card_reason(household.card, day))
    if target.requires_enrolment and enrolment is None:
        reasons.append(Reason.NOT_ENROLLED)
    if target.exclusions:
        reasons += exclusion_reasons(target, key, paid)
    found = NOTHING
    if _has_rates(reasons):
        found = payable(programme, household, key, conditions)
        _add(reasons, nothing_payable_reason(programme, household, key, found))
    codes = tuple(map(str, reasons)) if reasons else ()
    return Decision(
        programme.code,
        programme.version,
        key,
        not codes,
        codes,
        found.amount_riel,
        found.lines,
        found.entitlements,
    )


def _add(reasons: list[str], reason: str | None) -> None:
    if reason is not None:
        reasons.append(reason)


# Rate tables have cells only for targeted levels and locations: the amount (and so
# NOTHING_PAYABLE) is computed unless one of these applies.
NO_RATES = frozenset(
    {Reason.HOUSEHOLD_WITHDRAWN, Reason.NOT_POOR, Reason.OUTSIDE_TARGET_LEVEL, Reason.OUTSIDE_TARGET_LOCATION}
)


def _has_rates(reasons: Iterable[str]) -> bool:
    return NO_RATES.isdisjoint(reasons)


def targeting_reasons(target: Target, household: AnyHousehold, day: date) -> list[str]:
    reasons: list[str] = []
    if household.status is HouseholdStatus.WITHDRAWN:
        reasons.append(Reason.HOUSEHOLD_WITHDRAWN)
    level = household.poverty_level
    if level not in POOR_LEVELS:
        reasons.append(Reason.NOT_POOR)
    elif level not in target.poverty_levels:
        reasons.append(Reason.OUTSIDE_TARGET_LEVEL)
    if not target.covers_area(household.province_code, household.commune_code):
        reasons.append(Reason.OUTSIDE_TARGET_AREA)
    if household.location_category_on(day) not in target.location_categories:
        reasons.append(Reason.OUTSIDE_TARGET_LOCATION)
    return reasons


def card_reason(card: CardSnapshot | Card | None, day: date) -> str | None:
    """None when the household held a card in force on ``day``.

    A card the registry has since marked EXPIRED was still in force on the days of its validity
    (DOMAIN §5.1: what counts is the card on the period's first day, not on the day we look).
    """
    if card is None or card.issued_on > day:
        return Reason.NO_ACTIVE_CARD
    if card.status not in (CardStatus.ACTIVE, CardStatus.EXPIRED):
        return Reason.NO_ACTIVE_CARD  # revoked (or replaced): not in force whatever its dates
    return None if day <= card.valid_until else Reason.CARD_EXPIRED


def exclusion_reasons(target: Target, key: str, paid: PaidKeys) -> list[str]:
    """``EXCLUDED_BY_<CODE>`` for each exclusion of this payment that a reported payment meets."""
    return [
        excluded_by(exclusion.programme_code)
        for exclusion in target.exclusions_for(key)
        if any(exclusion.covers(code, paid_key) for code, paid_key in paid)
    ]


# --- what would be paid ----------------------------------------------------------------------------


class Payable(NamedTuple):
    lines: tuple[PaymentLine, ...] = ()
    entitlements: tuple[Entitlement, ...] = ()  # PWYC: those arising in the payment's month
    accepted_conditions: int = 0  # PWYC: every accepted condition of the household

    @property
    def amount_riel(self) -> int:
        return sum(line.amount_riel for line in self.lines) + sum(e.amount_riel for e in self.entitlements)


NOTHING = Payable()


def payable(
    programme: ProgrammeVersion, household: AnyHousehold, key: str, conditions: Sequence[ConditionEvent]
) -> Payable:
    """What this payment would pay, with the calculator's arithmetic."""
    if programme.conditions is None:
        # A Household has every attribute the calculator reads (tests/test_household.py).
        return Payable(lines=tuple(calculate(programme, household, key)))  # type: ignore[arg-type]
    if not conditions:
        return NOTHING  # what assessing no condition gives, without the work: most households
    accepted = assess_conditions(programme, household, conditions).accepted  # type: ignore[arg-type]
    month = key[:7] + "-"
    arising = tuple(e for e in accepted if e.occurred_on.isoformat().startswith(month))
    return Payable(entitlements=arising, accepted_conditions=len(accepted))


def nothing_payable_reason(
    programme: ProgrammeVersion, household: AnyHousehold, key: str, found: Payable
) -> str | None:
    if programme.conditions is not None:
        # A PWYC beneficiary is a household with a verified condition (pregnancy, birth, child
        # under 2); the entitlements of one month may still be none.
        return None if found.accepted_conditions else Reason.NOTHING_PAYABLE
    if found.lines:
        return None
    if programme.rate_tables and _only_vulnerable_pays(programme, household, key):
        return Reason.NO_VULNERABLE_MEMBER
    return Reason.NOTHING_PAYABLE


def _only_vulnerable_pays(programme: ProgrammeVersion, household: AnyHousehold, key: str) -> bool:
    day = programme.calendar.first_day(key)
    level = household.poverty_level or PovertyLevel.NOT_POOR
    rates = programme.rates_on(day, household.location_category_on(day), level)
    return rates.base == 0 and rates.per_member == 0 and rates.per_vulnerable > 0
