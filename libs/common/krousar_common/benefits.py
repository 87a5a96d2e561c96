"""The one benefit calculator (DOMAIN.md §5): pure functions over a programme version and a household.

Eligibility (card, enrolment, targeting, exclusions) is decided by the eligibility service; this
module only says how much a household is paid and shows the arithmetic. It runs once per household
in a national run (705,487 households), so it works on the already-validated models and builds
light dataclasses, never pydantic models, per call.
"""

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from functools import lru_cache
from typing import NamedTuple
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from krousar_common.events.households import HouseholdSnapshot, LocationCategory, MemberSnapshot, PovertyLevel
from krousar_common.programmes import (
    ConditionKind,
    ConditionRates,
    ConditionRules,
    FamilyComponents,
    ProgrammeKind,
    ProgrammeVersion,
)

ELDERLY_AGE = 60
BASE_LABEL = "base"


class Component(StrEnum):
    MONTHLY = "MONTHLY"
    TOPUP = "TOPUP"
    HIV = "HIV"
    SCHOLARSHIP = "SCHOLARSHIP"
    DISABILITY = "DISABILITY"
    ELDERLY = "ELDERLY"
    BASE = "BASE"


class Term(NamedTuple):
    """One part of a line's arithmetic: ``quantity × unit_rate = amount``."""

    label: str
    quantity: int
    unit_rate: int
    amount: int


@dataclass(frozen=True, slots=True)
class PaymentLine:
    programme_code: str
    programme_version: int
    period: str  # the payment key: period YYYY-MM or payment date YYYY-MM-DD
    household_id: UUID
    component: Component
    amount_riel: int
    terms: tuple[Term, ...]
    explanation: str


class VulnerableCount(NamedTuple):
    children: int
    elderly: int
    disability: int
    hiv: int
    distinct: int  # a member in several categories counts once


def term(label: str, quantity: int, unit_rate: int) -> Term:
    return Term(label, quantity, unit_rate, quantity * unit_rate)


def explain(terms: Sequence[Term], total: int) -> str:
    """``120,000 + 6 × 52,000 + 4 × 40,000 = 592,000``."""
    parts = [f"{t.amount:,}" if t.label == BASE_LABEL else f"{t.quantity} × {t.unit_rate:,}" for t in terms]
    return f"{' + '.join(parts)} = {total:,}"


# --- ages and vulnerable members -------------------------------------------------------------------


def age_on(born: date, day: date) -> int:
    return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


@lru_cache(maxsize=1024)
def born_by(day: date, years: int) -> date:
    """The latest birth date of someone at least ``years`` old on ``day``."""
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February into a common year: the birthday is reached on 28 February
        return date(day.year - years, 2, 28)


def card_active_on(household: HouseholdSnapshot, day: date) -> bool:
    return household.card is not None and household.card.is_active_on(day)


def vulnerable_members(household: HouseholdSnapshot, day: date, child_age_limit: int) -> VulnerableCount:
    """Vulnerable members of the household on ``day`` (DOMAIN §5: evaluated on the period's first day)."""
    return count_vulnerable(household.members_on(day), day, child_age_limit)


def count_vulnerable(members: Iterable[MemberSnapshot], day: date, child_age_limit: int) -> VulnerableCount:
    child_if_born_after, elderly_if_born_by = born_by(day, child_age_limit), born_by(day, ELDERLY_AGE)
    children = elderly = disability = hiv = distinct = 0
    for member in members:
        is_child = member.date_of_birth > child_if_born_after
        is_elderly = member.date_of_birth <= elderly_if_born_by
        if is_child or is_elderly or member.has_disability or member.lives_with_hiv:
            distinct += 1
            children += is_child
            elderly += is_elderly
            disability += member.has_disability
            hiv += member.lives_with_hiv
    return VulnerableCount(children, elderly, disability, hiv, distinct)


# --- the calculator --------------------------------------------------------------------------------
#
# A household's lines are its counts (what the formula looks at: location, level, members and
# vulnerable members; or the family package's members by category) priced by the programme.
# Counting is per household; pricing depends only on the programme, the day and the counts, so a
# ``Calculator`` prices each distinct counts once: the 700,000 households of a national run share
# some hundreds of them, and the arithmetic and its explanation are most of the work.


class RateCounts(NamedTuple):
    """What a programme of rates looks at in a household."""

    location: LocationCategory
    level: PovertyLevel
    members: int
    vulnerable: int


class FamilyCounts(NamedTuple):
    """What the family package looks at in a household."""

    hiv: int
    disabled: int
    elderly: int
    pupils_6_14: int
    pupils_15_17: int


Counts = RateCounts | FamilyCounts


@dataclass(frozen=True, slots=True)
class PricedLine:
    """What every household with the same counts is paid for one component."""

    component: Component
    amount_riel: int
    terms: tuple[Term, ...]
    explanation: str


def calculate(
    programme: ProgrammeVersion, household: HouseholdSnapshot, period_or_date: str | date
) -> list[PaymentLine]:
    """The payment lines of one household for one period (``YYYY-MM``) or payment date.

    Location, members and rates are those in force on the period's first day (or the payment
    date). Lines of 0 riel are left out: an empty list means nothing is payable.
    """
    key, day = programme.payment_key(period_or_date)
    priced = price(programme, day, count_facts(programme, household, day))
    return _lines(programme, household.household_id, key, priced)


class Calculator:
    """``calculate`` for the households of one programme version, each distinct counts priced
    once (remembered as long as the calculator lives): the same lines, for less work."""

    def __init__(self, programme: ProgrammeVersion) -> None:
        self.programme = programme
        self._days: dict[str | date, date] = {}
        self._priced: dict[tuple[date, Counts], tuple[PricedLine, ...]] = {}

    def priced(self, household: HouseholdSnapshot, period_or_date: str | date) -> tuple[PricedLine, ...]:
        """The lines ``calculate`` gives the household, without the programme, key and household
        each of them repeats: a run writes its rows from these."""
        day = self._days.get(period_or_date)
        if day is None:
            day = self._days[period_or_date] = self.programme.payment_key(period_or_date)[1]
        counts = count_facts(self.programme, household, day)
        priced = self._priced.get((day, counts))
        if priced is None:
            priced = self._priced[day, counts] = price(self.programme, day, counts)
        return priced


def count_facts(programme: ProgrammeVersion, household: HouseholdSnapshot, day: date) -> Counts:
    """What the programme's formula looks at in the household on ``day``."""
    members = household.members_on(day)
    if programme.components is not None:
        return _family_counts(members, day)
    if programme.conditions is not None:
        raise ValueError(f"{programme.code} pays verified conditions: use assess_conditions()")
    if household.poverty_level is None:
        raise ValueError(f"household {household.household_id} has no poverty level")
    vulnerable = count_vulnerable(members, day, programme.child_age_limit).distinct
    return RateCounts(household.location_category_on(day), household.poverty_level, len(members), vulnerable)


def price(programme: ProgrammeVersion, day: date, counts: Counts) -> tuple[PricedLine, ...]:
    """The lines of a household with ``counts`` at the rates in force on ``day``, 0 riel left out."""
    if isinstance(counts, FamilyCounts):
        if programme.components is None:
            raise ValueError(f"{programme.code} has no family package components")
        return _family_lines(programme.components, counts)
    return _rate_lines(programme, day, counts)


def _rate_lines(programme: ProgrammeVersion, day: date, counts: RateCounts) -> tuple[PricedLine, ...]:
    rates = programme.rates_on(day, counts.location, counts.level)
    terms = [term(BASE_LABEL, 1, rates.base)]
    # A rate of 0 is not in that period's formula (COVID19_CT per member from 2024): not shown.
    if rates.per_member:
        terms.append(term("members", counts.members, rates.per_member))
    if rates.per_vulnerable:
        terms.append(term("vulnerable members", counts.vulnerable, rates.per_vulnerable))
    component = Component.TOPUP if programme.kind is ProgrammeKind.TOPUP else Component.MONTHLY
    line = _priced(component, tuple(terms))
    return (line,) if line.amount_riel else ()


def _family_counts(members: Sequence[MemberSnapshot], day: date) -> FamilyCounts:
    pupils = [m for m in members if m.in_school]
    aged_6, aged_15, aged_18 = born_by(day, 6), born_by(day, 15), born_by(day, 18)
    return FamilyCounts(
        hiv=_count(members, "lives_with_hiv"),
        disabled=_count(members, "has_disability"),
        elderly=_count_born_by(members, born_by(day, ELDERLY_AGE)),
        pupils_6_14=_count_born_by(pupils, aged_6) - _count_born_by(pupils, aged_15),
        pupils_15_17=_count_born_by(pupils, aged_15) - _count_born_by(pupils, aged_18),
    )


def _family_lines(rates: FamilyComponents, counts: FamilyCounts) -> tuple[PricedLine, ...]:
    by_component = {
        Component.HIV: (term("members living with HIV", counts.hiv, rates.hiv_per_member),),
        Component.SCHOLARSHIP: (
            term("in-school children aged 6–14", counts.pupils_6_14, rates.scholarship_age_6_14),
            term("in-school children aged 15–17", counts.pupils_15_17, rates.scholarship_age_15_17),
        ),
        Component.DISABILITY: (
            term("members with disability", counts.disabled, rates.disability_per_member),
        ),
        Component.ELDERLY: (term("members aged 60 or more", counts.elderly, rates.elderly_per_member),),
        Component.BASE: (term(BASE_LABEL, 1, rates.household_base),),
    }
    return tuple(
        _priced(component, terms) for component, terms in by_component.items() if any(t.amount for t in terms)
    )


def _count_born_by(members: Iterable[MemberSnapshot], latest_birth: date) -> int:
    return sum(m.date_of_birth <= latest_birth for m in members)


def _count(members: Iterable[MemberSnapshot], flag: str) -> int:
    return sum(getattr(m, flag) for m in members)


def _priced(component: Component, terms: tuple[Term, ...]) -> PricedLine:
    total = sum(t.amount for t in terms)
    return PricedLine(component, total, terms, explain(terms, total))


def _lines(
    programme: ProgrammeVersion, household_id: UUID, key: str, priced: Iterable[PricedLine]
) -> list[PaymentLine]:
    return [
        PaymentLine(
            programme_code=programme.code,
            programme_version=programme.version,
            period=key,
            household_id=household_id,
            component=line.component,
            amount_riel=line.amount_riel,
            terms=line.terms,
            explanation=line.explanation,
        )
        for line in priced
    ]


# --- PWYC conditional entitlements -----------------------------------------------------------------


class ConditionEvent(BaseModel):
    """A condition verified by a health facility (DOMAIN §5.2), recorded on the household."""

    model_config = ConfigDict(frozen=True)

    event_id: UUID
    kind: ConditionKind
    occurred_on: date
    subject_id: UUID = Field(
        description="Pregnancy id (antenatal visit, delivery) or the child's member id (postnatal check)."
    )
    facility_code: str
    babies: int = Field(1, strict=True, ge=1, description="Babies born (facility delivery only).")


class RejectionReason(StrEnum):
    DUPLICATE_EVENT = "DUPLICATE_EVENT"
    NO_RATE_IN_FORCE = "NO_RATE_IN_FORCE"
    CHILD_NOT_IN_HOUSEHOLD = "CHILD_NOT_IN_HOUSEHOLD"
    CHILD_TOO_OLD = "CHILD_TOO_OLD"
    MAXIMUM_REACHED = "MAXIMUM_REACHED"


@dataclass(frozen=True, slots=True)
class Entitlement:
    event_id: UUID
    household_id: UUID
    kind: ConditionKind
    occurred_on: date
    subject_id: UUID
    amount_riel: int
    terms: tuple[Term, ...]
    explanation: str


@dataclass(frozen=True, slots=True)
class RejectedCondition:
    event: ConditionEvent
    reason: RejectionReason
    detail: str


@dataclass(frozen=True, slots=True)
class ConditionAssessment:
    accepted: list[Entitlement]
    rejected: list[RejectedCondition]


@dataclass
class _Tally:
    seen: set[UUID]
    counts: Counter[tuple[ConditionKind, UUID]]

    def record(self, event: ConditionEvent) -> None:
        self.seen.add(event.event_id)
        self.counts[event.kind, event.subject_id] += 1


def assess_conditions(
    programme: ProgrammeVersion, household: HouseholdSnapshot, events: Iterable[ConditionEvent]
) -> ConditionAssessment:
    """Payable entitlements of a household's verified conditions, each at the rate in force on its date.

    Pass every condition recorded on the household, earlier ones included: maxima count them, and
    the result is the same however often it is computed. Events count in date order.
    """
    if programme.conditions is None:
        raise ValueError(f"{programme.code} does not pay verified conditions")
    rules, births = programme.conditions, {m.member_id: m.date_of_birth for m in household.members}
    tally = _Tally(set(), Counter())
    assessment = ConditionAssessment([], [])
    for event in sorted(events, key=lambda e: e.occurred_on):
        outcome = _assess(event, household.household_id, rules, births, tally)
        if isinstance(outcome, Entitlement):
            assessment.accepted.append(outcome)
        else:
            assessment.rejected.append(outcome)
    return assessment


def _assess(
    event: ConditionEvent, household_id: UUID, rules: ConditionRules, births: dict[UUID, date], tally: _Tally
) -> Entitlement | RejectedCondition:
    if event.event_id in tally.seen:
        return RejectedCondition(event, RejectionReason.DUPLICATE_EVENT, "event already counted")
    rates = rules.rates_on(event.occurred_on)
    if rates is None:
        return RejectedCondition(
            event, RejectionReason.NO_RATE_IN_FORCE, f"no rate in force on {event.occurred_on}"
        )
    rejection = _child_rejection(event, rules, births) or _maximum_rejection(event, rules, tally)
    if rejection is not None:
        return rejection
    tally.record(event)
    return _entitlement(event, household_id, rates)


def _maximum_rejection(
    event: ConditionEvent, rules: ConditionRules, tally: _Tally
) -> RejectedCondition | None:
    maximum = rules.maximum(event.kind)
    if tally.counts[event.kind, event.subject_id] < maximum:
        return None
    detail = f"{event.kind} beyond the maximum of {maximum} per {_subject_name(event.kind)}"
    return RejectedCondition(event, RejectionReason.MAXIMUM_REACHED, detail)


def _child_rejection(
    event: ConditionEvent, rules: ConditionRules, births: dict[UUID, date]
) -> RejectedCondition | None:
    if event.kind is not ConditionKind.POSTNATAL_OR_VACCINATION:
        return None
    born = births.get(event.subject_id)
    if born is None:
        return RejectedCondition(
            event, RejectionReason.CHILD_NOT_IN_HOUSEHOLD, f"no member {event.subject_id}"
        )
    if age_on(born, event.occurred_on) >= rules.postnatal_child_age_limit:
        detail = f"the child was {rules.postnatal_child_age_limit} or older on {event.occurred_on}"
        return RejectedCondition(event, RejectionReason.CHILD_TOO_OLD, detail)
    return None


def _subject_name(kind: ConditionKind) -> str:
    return {
        ConditionKind.ANTENATAL_VISIT: "pregnancy",
        ConditionKind.FACILITY_DELIVERY: "birth",
        ConditionKind.POSTNATAL_OR_VACCINATION: "child",
    }[kind]


def _entitlement(event: ConditionEvent, household_id: UUID, rates: ConditionRates) -> Entitlement:
    if event.kind is ConditionKind.FACILITY_DELIVERY and rates.delivery_paid_per_baby:
        terms = (term("babies delivered at a facility", event.babies, rates.facility_delivery),)
    else:
        terms = (term(event.kind.lower().replace("_", " "), 1, rates.rate_for(event.kind)),)
    total = sum(t.amount for t in terms)
    return Entitlement(
        event.event_id,
        household_id,
        event.kind,
        event.occurred_on,
        event.subject_id,
        total,
        terms,
        explain(terms, total),
    )
