"""Pure logic of a payment run: which households a run pays, which it leaves out and why, the
payment ids, the totals and the run's state machine. No I/O, no async."""

import hashlib
import uuid
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from enum import StrEnum
from typing import Any, NamedTuple
from uuid import UUID

from asyncpg.pgproto import pgproto
from krousar_common.benefits import Calculator, PricedLine, card_active_on
from krousar_common.events.households import HouseholdStatus, LocationCategory
from krousar_common.events.payments import PaymentStatus, RunState
from krousar_common.household_facts import Household
from krousar_common.programmes import ProgrammeVersion

CAMBODIA = timezone(timedelta(hours=7), "ICT")  # no daylight saving time
# The PSP's word on a line it never reported on, once the claim window has closed.
CLAIM_WINDOW_CLOSED = "CLAIM_WINDOW_CLOSED"

# A line's payment_id is made from "programme|period|household|component|attempt" (``payment_id``):
# the same line always gets the same id, and a retry after a failure (attempt 2) gets a new one.
PAYMENT_NAMESPACE = uuid.UUID("6f1c1d2e-6b1a-4e51-9d0c-4b7279757361")

# Line states that hold their (programme, period, household, component): the household is in a
# run not yet instructed, being paid, paid, or was given the money and left it unclaimed. FAILED
# and CANCELLED lines do not.
LIVE_STATES = ("CALCULATED", "INSTRUCTED", "PAID", "UNCLAIMED")
# A household counts as "paid by" another programme (exclusions) once its payment is on its way.
PAID_STATES = ("INSTRUCTED", "PAID")
FINAL_STATUSES = frozenset(PaymentStatus)


class LeftOutReason(StrEnum):
    NOT_ELIGIBLE = "NOT_ELIGIBLE"
    HOUSEHOLD_WITHDRAWN = "HOUSEHOLD_WITHDRAWN"
    CARD_NOT_ACTIVE = "CARD_NOT_ACTIVE"
    NOT_ENROLLED = "NOT_ENROLLED"
    LEVEL_NOT_TARGETED = "LEVEL_NOT_TARGETED"
    LOCATION_NOT_TARGETED = "LOCATION_NOT_TARGETED"
    AREA_NOT_TARGETED = "AREA_NOT_TARGETED"
    ALREADY_PAID = "ALREADY_PAID"
    IN_ANOTHER_RUN = "IN_ANOTHER_RUN"
    NOTHING_PAYABLE = "NOTHING_PAYABLE"
    CALCULATION_ERROR = "CALCULATION_ERROR"


def excluded_reason(programme_code: str) -> str:
    return f"EXCLUDED_BY_{programme_code}"


# The four below are NamedTuples: a national run makes some 700,000 of each, and a frozen
# dataclass costs several times as much to make.


class Candidate(NamedTuple):
    """A household's latest decision for the programme, as the projection holds it: ``row`` has
    the household's columns (``krousar_common.household_facts.COLUMNS``, ``facts`` as JSON text),
    ``card_number`` and ``head_name``, and the payee (``payee_name``, ``channel``, ``account``,
    ``enrolled``). The household is read from it only when the decision is eligible."""

    household_id: UUID
    eligible: bool
    reasons: list[str]
    row: Mapping[str, Any]


class LeftOut(NamedTuple):
    household_id: UUID
    reason: str
    detail: str | None = None


class Payee(NamedTuple):
    name: str
    channel: str
    account: str | None


class Planned(NamedTuple):
    """A household the run pays: its lines (with their attempt numbers) and where it lives."""

    household: Household
    lines: list[tuple[PricedLine, int]]
    payee: Payee
    location_category: str

    @property
    def amount_riel(self) -> int:
        return sum(line.amount_riel for line, _ in self.lines)


@dataclass
class History:
    """What earlier runs did for this (programme, period), and who other programmes paid.

    ``live`` maps (household, component) to the status of the line that holds it; ``attempts``
    counts every earlier line of the pair; ``excluded`` maps households to the programme whose
    payment excludes them from this one.
    """

    live: dict[tuple[UUID, str], str] = field(default_factory=dict)
    attempts: Counter[tuple[UUID, str]] = field(default_factory=Counter)
    excluded: dict[UUID, str] = field(default_factory=dict)

    def split(self, bounds: list[UUID]) -> list["History"]:
        """The history cut as the pages of a run are: page i holds the households after
        ``bounds[i - 1]`` up to and including ``bounds[i]`` (the last page: all after the last bound)."""
        if not self.attempts and not self.live and not self.excluded:
            return [self] * (len(bounds) + 1)
        pages = [History() for _ in range(len(bounds) + 1)]
        for pair, status in self.live.items():
            pages[bisect_left(bounds, pair[0])].live[pair] = status
        for pair, count in self.attempts.items():
            pages[bisect_left(bounds, pair[0])].attempts[pair] = count
        for household_id, code in self.excluded.items():
            pages[bisect_left(bounds, household_id)].excluded[household_id] = code
        return pages


def payment_id(programme_code: str, period: str, household_id: UUID, component: str, attempt: int) -> UUID:
    """The line's id: the first half of its household's id, then half of the SHA-1 of
    PAYMENT_NAMESPACE and "programme|period|household|component|attempt", as a version 8 UUID.

    A run's lines are written in household order: ids in that order too make each index of them
    grow at its end instead of at random places, and the relay read a run's lines (in payment id
    order) in the order they are stored."""
    name = f"{programme_code}|{period}|{household_id}|{component}|{attempt}"
    digest = hashlib.sha1(PAYMENT_NAMESPACE.bytes + name.encode(), usedforsecurity=False).digest()
    return uuid.UUID(bytes=_ordered_id(household_id.bytes, digest))


def _ordered_id(household: bytes, digest: bytes) -> bytes:
    raw = bytearray(household[:8] + digest[8:16])
    raw[6] = (raw[6] & 0x0F) | 0x80  # version 8 (the household's version 4 held every id's place)
    raw[8] = (raw[8] & 0x3F) | 0x80  # the RFC 9562 variant
    return bytes(raw)


PaymentIds = Callable[[UUID, str, int], UUID]


def payment_ids(programme_code: str, period: str) -> PaymentIds:
    """``payment_id`` for the lines of one (programme, period), several times faster: the hash of
    the common prefix is computed once, and the id is asyncpg's UUID type (equal to, and
    interchangeable with, ``uuid.UUID``), made from the bytes without parsing them again."""
    prefix = hashlib.sha1(PAYMENT_NAMESPACE.bytes, usedforsecurity=False)
    prefix.update(f"{programme_code}|{period}|".encode())

    def payment_id_of(household_id: UUID, component: str, attempt: int) -> UUID:
        digest = prefix.copy()
        digest.update(f"{household_id}|{component}|{attempt}".encode())
        return pgproto.UUID(_ordered_id(household_id.bytes, digest.digest()))

    return payment_id_of


def payee_of(row: Mapping[str, Any]) -> Payee:
    """The enrolled payee; without an enrolment (a programme that needs none), the head by name."""
    if row["enrolled"]:
        return Payee(row["payee_name"], row["channel"] or "WING", row["account"])
    return Payee(row["head_name"] or str(row["household_id"]), "WING", None)


def assess(
    calculator: Calculator, key: str, day: date, candidate: Candidate, history: History
) -> Planned | LeftOut:
    """Pay the household or say why not (by ``calculator``'s programme). The decision is
    eligibility's; the checks that depend on the period's first day (card, location, members) are
    made again here, on that day, because the latest decision may have been made for another day."""
    if not candidate.eligible:
        reason = candidate.reasons[0] if candidate.reasons else LeftOutReason.NOT_ELIGIBLE
        return LeftOut(candidate.household_id, reason, ", ".join(candidate.reasons) or None)
    row = candidate.row
    household = Household(row)
    category = household.location_category_on(day)
    refusal = _target_refusal(calculator.programme, key, day, household, category, row, history)
    if refusal is not None:
        return LeftOut(candidate.household_id, *refusal)
    try:
        lines = calculator.priced(household, key)  # type: ignore[arg-type]
    except ValueError as exc:
        return LeftOut(candidate.household_id, LeftOutReason.CALCULATION_ERROR, str(exc)[:500])
    if not lines:
        return LeftOut(candidate.household_id, LeftOutReason.NOTHING_PAYABLE)
    return _plan(household, lines, row, category, history)


def _target_refusal(
    programme: ProgrammeVersion,
    key: str,
    day: date,
    household: Household,
    category: LocationCategory,
    row: Mapping[str, Any],
    history: History,
) -> tuple[str, str | None] | None:
    target = programme.target
    if household.status != HouseholdStatus.ACTIVE:
        return LeftOutReason.HOUSEHOLD_WITHDRAWN, None
    if target.requires_active_card and not card_active_on(household, day):  # type: ignore[arg-type]
        return LeftOutReason.CARD_NOT_ACTIVE, _card_detail(household, day, row["card_number"])
    if target.requires_enrolment and not row["enrolled"]:
        return LeftOutReason.NOT_ENROLLED, None
    if household.poverty_level not in target.poverty_levels:
        return LeftOutReason.LEVEL_NOT_TARGETED, str(household.poverty_level)
    if category not in target.location_categories:
        return LeftOutReason.LOCATION_NOT_TARGETED, str(category)
    if not target.covers_area(household.province_code, household.commune_code):
        return LeftOutReason.AREA_NOT_TARGETED, household.commune_code
    excluded_by = history.excluded.get(household.household_id)
    if excluded_by is not None:
        return excluded_reason(excluded_by), f"paid by {excluded_by}; excluded from {programme.code} {key}"
    return None


def _card_detail(household: Household, day: date, number: str | None) -> str:
    card = household.card
    if card is None:
        return "no equity card"
    return f"card {number} {card.status}, valid {card.issued_on}..{card.valid_until}, not on {day}"


def _plan(
    household: Household,
    lines: tuple[PricedLine, ...],
    row: Mapping[str, Any],
    category: LocationCategory,
    history: History,
) -> Planned | LeftOut:
    if not history.attempts and not history.live:  # the period's first run: nobody paid or held yet
        return Planned(household, [(line, 1) for line in lines], payee_of(row), str(category))
    held = [history.live.get((household.household_id, line.component)) for line in lines]
    to_pay = [
        (line, history.attempts.get((household.household_id, line.component), 0) + 1)
        for line, status in zip(lines, held, strict=True)
        if status is None
    ]
    if not to_pay:
        reason = LeftOutReason.IN_ANOTHER_RUN if "CALCULATED" in held else LeftOutReason.ALREADY_PAID
        return LeftOut(household.household_id, reason, ", ".join(sorted({str(s) for s in held})))
    return Planned(household, to_pay, payee_of(row), str(category))


# --- totals ----------------------------------------------------------------------------------------

GroupKey = tuple[str, str, str]  # province, location category, poverty level


@dataclass
class Totals:
    households: Counter[GroupKey] = field(default_factory=Counter)
    amount: Counter[GroupKey] = field(default_factory=Counter)
    left_out: Counter[str] = field(default_factory=Counter)
    province_lines: Counter[str] = field(default_factory=Counter)

    def add(self, planned: Planned) -> None:
        key = (
            planned.household.province_code,
            planned.location_category,
            str(planned.household.poverty_level),
        )
        self.households[key] += 1
        self.amount[key] += planned.amount_riel
        self.province_lines[key[0]] += len(planned.lines)

    def merge(self, other: "Totals") -> None:
        self.households.update(other.households)
        self.amount.update(other.amount)
        self.left_out.update(other.left_out)
        self.province_lines.update(other.province_lines)

    def rows(self) -> list[dict[str, Any]]:
        return [self._row(key) for key in sorted(self.households)]

    def _row(self, key: GroupKey) -> dict[str, Any]:
        province, category, level = key
        return {
            "province_code": province,
            "location_category": category,
            "poverty_level": level,
            "households": self.households[key],
            "amount_riel": self.amount[key],
        }

    def by_province(self) -> dict[str, tuple[int, int]]:
        """(lines, riel) by province."""
        riel: Counter[str] = Counter()
        for (province, _, _), amount in self.amount.items():
            riel[province] += amount
        return {province: (lines, riel[province]) for province, lines in self.province_lines.items()}

    @property
    def lines(self) -> int:
        return sum(self.province_lines.values())

    @property
    def total_households(self) -> int:
        return sum(self.households.values())

    @property
    def total_amount(self) -> int:
        return sum(self.amount.values())


def roll_up(rows: Iterable[dict[str, Any]], dimension: str) -> list[dict[str, Any]]:
    """Totals by one dimension (province_code, location_category or poverty_level)."""
    households: Counter[str] = Counter()
    amount: Counter[str] = Counter()
    for row in rows:
        households[row[dimension]] += row["households"]
        amount[row[dimension]] += row["amount_riel"]
    return [{dimension: k, "households": households[k], "amount_riel": amount[k]} for k in sorted(households)]


# --- the run's state machine -----------------------------------------------------------------------

TRANSITIONS: dict[RunState, frozenset[RunState]] = {
    RunState.DRAFT: frozenset({RunState.CALCULATED, RunState.CANCELLED}),
    RunState.CALCULATED: frozenset({RunState.APPROVED, RunState.CANCELLED}),
    RunState.APPROVED: frozenset({RunState.INSTRUCTED}),
    RunState.INSTRUCTED: frozenset({RunState.RECONCILED}),
    RunState.RECONCILED: frozenset(),
    RunState.CANCELLED: frozenset(),
}


def can_move(current: str, target: RunState) -> bool:
    return target in TRANSITIONS[RunState(current)]


def claim_window_closes(
    available_from: date, claim_until: date, instructed_at: datetime, grace: timedelta
) -> datetime:
    """When the payees of a run have had their whole claim window (DOMAIN §5.1: from the 25th for
    30 days) and the PSP its ``grace`` to report: a line it said nothing of is then UNCLAIMED.

    The window ends with its last day in Cambodia; a run instructed after its window opened (late,
    or back-dated) gives its payees the window's length from the instruction instead.
    """
    window = timedelta(days=(claim_until - available_from).days + 1)
    last_day_ends = datetime.combine(claim_until + timedelta(days=1), time(), CAMBODIA)
    return max(last_day_ends, instructed_at + window) + grace


def over_budget(amount_riel: int, ceiling: int | None) -> bool:
    return ceiling is not None and amount_riel > ceiling
