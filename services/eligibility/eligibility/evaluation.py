"""Deciding in batches: load a batch's facts in a handful of queries, decide in Python, write only
the decisions that changed (COPY + one upsert) and publish those that changed for payments (outbox,
COPY). The same path serves one household (an enrolment), the queue of changed households, and a
full re-evaluation of every household for every programme.

A decision is published again when its outcome changes (eligible, reasons, programme version) and,
while it is eligible, when what payments computes from it changes (household version, enrolment,
PWYC conditions): payments never calls back, so the snapshot it holds must be the current one.
A new payment period alone (the month rolling over) updates the row but publishes nothing.
"""

import hashlib
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any
from uuid import UUID

import asyncpg
from krousar_common import outbox
from krousar_common.benefits import ConditionEvent
from krousar_common.events import Envelope, make_envelope
from krousar_common.events.eligibility import EligibilityDecided, Enrolment
from krousar_common.events.households import HouseholdSnapshot
from krousar_common.programmes import ProgrammeVersion

from eligibility import domain, store

CAMBODIA = timezone(timedelta(hours=7), "ICT")  # no daylight saving time
SOURCE = "krousar/eligibility"


def today() -> date:
    return datetime.now(CAMBODIA).date()


async def current_day(conn: asyncpg.Connection) -> date:
    """The day decisions are made for: the clock's (held by an operator or set daily), else today."""
    clock = await store.get_clock(conn)
    return clock["day"] if clock is not None else today()


@dataclass(frozen=True)
class Publishing:
    topic: str | None  # None: decisions are stored, not published
    correlation_id: str


@dataclass(frozen=True, slots=True)
class Facts:
    """Everything a household's decisions depend on besides the programme and the day."""

    household: HouseholdSnapshot
    enrolment: Enrolment | None = None
    conditions: tuple[ConditionEvent, ...] = ()
    paid: frozenset[tuple[str, str]] = frozenset()


@dataclass
class Outcome:
    taken: int = 0  # queue entries taken (drain_pending)
    households: int = 0
    written: int = 0
    published: int = 0
    skipped: list[UUID] = field(default_factory=list)
    # Registry event times of the households decided from the queue (decision latency metric).
    event_times: list[datetime] = field(default_factory=list)

    def add(self, other: "Outcome") -> None:
        self.households += other.households
        self.written += other.written
        self.published += other.published
        self.skipped += other.skipped


# --- loading facts ---------------------------------------------------------------------------------


def enrolment_of(row: asyncpg.Record) -> Enrolment:
    return Enrolment(
        enrolment_id=row["enrolment_id"],
        payee_type=row["payee_type"],
        payee_name=row["payee_name"],
        payee_member_id=row["payee_member_id"],
        channel=row["channel"],
        account=row["account"],
        verified_by=row["verified_by"],
        verified_on=row["verified_on"],
    )


def condition_of(row: asyncpg.Record) -> ConditionEvent:
    return ConditionEvent(
        event_id=row["event_id"],
        kind=row["kind"],
        occurred_on=row["occurred_on"],
        subject_id=row["subject_id"],
        facility_code=row["facility_code"],
        babies=row["babies"],
    )


async def load_facts(
    conn: asyncpg.Connection, rows: Sequence[asyncpg.Record], programmes: Sequence[ProgrammeVersion]
) -> list[Facts]:
    """Facts of a batch of (household_id, snapshot text) rows: one query per kind of fact."""
    ids = [r["household_id"] for r in rows]
    enrolments = {r["household_id"]: enrolment_of(r) for r in await store.active_enrolments(conn, ids)}
    conditions: dict[UUID, list[ConditionEvent]] = defaultdict(list)
    if any(p.conditions is not None for p in programmes):
        for r in await store.conditions_of(conn, ids):
            conditions[r["household_id"]].append(condition_of(r))
    paid: dict[UUID, set[tuple[str, str]]] = defaultdict(set)
    if any(p.target.exclusions for p in programmes):
        for r in await store.paid_keys(conn, ids):
            paid[r["household_id"]].add((r["programme_code"], r["period"]))
    return [
        Facts(
            HouseholdSnapshot.model_validate_json(r["snapshot"]),
            enrolments.get(r["household_id"]),
            tuple(conditions.get(r["household_id"], ())),
            frozenset(paid.get(r["household_id"], ())),
        )
        for r in rows
    ]


# --- deciding --------------------------------------------------------------------------------------


def fingerprint(decision: domain.Decision, facts: Facts, programme: ProgrammeVersion) -> str:
    outcome = f"{decision.eligible}|{','.join(decision.reasons)}|v{decision.programme_version}"
    if not decision.eligible:
        return outcome
    enrolment = facts.enrolment.enrolment_id if facts.enrolment else None
    payable = f"|h{facts.household.version}|e{enrolment}"
    if programme.conditions is not None:
        ids = sorted(str(c.event_id) for c in facts.conditions)
        payable += "|c" + hashlib.blake2b(",".join(ids).encode(), digest_size=8).hexdigest()
    return outcome + payable


def decision_event(
    decision: domain.Decision, facts: Facts, programme: ProgrammeVersion, day: date, now: datetime
) -> EligibilityDecided:
    # Every part is validated already: construct without validating the household again.
    return EligibilityDecided.model_construct(
        household_id=facts.household.household_id,
        programme_code=decision.programme_code,
        programme_version=decision.programme_version,
        eligible=decision.eligible,
        reasons=list(decision.reasons),
        effective_on=day,
        decided_at=now,
        household=facts.household,
        enrolment=facts.enrolment,
        conditions=list(facts.conditions) if programme.conditions is not None else [],
    )


def _publishable(
    publishing: Publishing, old: asyncpg.Record | None, print_: str, decision: domain.Decision
) -> bool:
    if publishing.topic is None:
        return False
    if old is None:
        # Never decided before and the programme isn't running: nothing for payments to learn
        # (no decision = not eligible), and a national register would publish 700,000 of them
        # for every past programme. Stored, shown by the API, published once it changes.
        return decision.payment_key is not None
    return old["fingerprint"] != print_


def _changed(old: asyncpg.Record | None, row: tuple[Any, ...]) -> bool:
    if old is None:
        return True
    _, _, version, key, eligible, reasons, amount, _, print_ = row
    stored = (old["programme_version"], old["payment_key"], old["eligible"], list(old["reasons"]))
    return stored != (version, key, eligible, reasons) or (old["amount_riel"], old["fingerprint"]) != (
        amount,
        print_,
    )


async def decide_batch(
    conn: asyncpg.Connection,
    rows: Sequence[asyncpg.Record],
    programmes: Sequence[ProgrammeVersion],
    day: date,
    publishing: Publishing,
) -> Outcome:
    """Decide every (household, programme) of the batch; write and publish what changed."""
    if not rows or not programmes:
        return Outcome(households=len(rows))
    batch = await load_facts(conn, rows, programmes)
    ids, codes = [f.household.household_id for f in batch], [p.code for p in programmes]
    current = {
        (r["household_id"], r["programme_code"]): r for r in await store.current_decisions(conn, ids, codes)
    }
    now = datetime.now(UTC)
    writes: list[tuple[Any, ...]] = []
    events: list[tuple[str, Envelope]] = []
    for facts in batch:
        for programme in programmes:
            decision = domain.decide(
                programme, facts.household, facts.enrolment, day, conditions=facts.conditions, paid=facts.paid
            )
            print_ = fingerprint(decision, facts, programme)
            row = (
                facts.household.household_id,
                programme.code,
                decision.programme_version,
                decision.payment_key,
                decision.eligible,
                list(decision.reasons),
                decision.amount_riel,
                day,
                print_,
            )
            old = current.get((facts.household.household_id, programme.code))
            if _changed(old, row):
                writes.append(row)
            if _publishable(publishing, old, print_, decision):
                event = decision_event(decision, facts, programme, day, now)
                envelope = make_envelope(
                    event,
                    source=SOURCE,
                    subject=str(facts.household.household_id),
                    correlation_id=publishing.correlation_id,
                )
                events.append((publishing.topic, envelope))
    await store.write_decisions(conn, writes)
    if events:
        await outbox.enqueue_many(conn, events)
    return Outcome(households=len(rows), written=len(writes), published=len(events))


# --- entry points ----------------------------------------------------------------------------------


async def decide_households(
    conn: asyncpg.Connection,
    household_ids: Sequence[UUID],
    publishing: Publishing,
    *,
    skip_locked: bool,
    programmes: Sequence[ProgrammeVersion] | None = None,
    day: date | None = None,
) -> Outcome:
    """Decide these households (for every programme unless given) in the caller's transaction.

    With ``skip_locked``, households another transaction holds are returned in ``skipped`` (queue
    them again) rather than waited for.
    """
    rows = await store.lock_households(conn, household_ids, skip_locked=skip_locked)
    if programmes is None:
        programmes = await store.load_programmes(conn)
    day = day or await current_day(conn)
    outcome = await decide_batch(conn, rows, programmes, day, publishing)
    if skip_locked and len(rows) < len(household_ids):
        locked = {r["household_id"] for r in rows}
        existing = await store.existing_households(conn, household_ids)
        outcome.skipped = [h for h in existing if h not in locked]
    return outcome


async def drain_pending(pool: asyncpg.Pool, publishing: Publishing, limit: int) -> Outcome:
    """Decide one batch of queued households; the ones held elsewhere go back in the queue."""
    async with pool.acquire() as conn, conn.transaction():
        taken = await store.take_pending(conn, limit)
        if not taken:
            return Outcome()
        outcome = await decide_households(conn, list(taken), publishing, skip_locked=True)
        await store.queue_households(conn, outcome.skipped, event_times=[taken[h] for h in outcome.skipped])
        outcome.taken = len(taken)
        skipped = set(outcome.skipped)
        outcome.event_times = [t for h, t in taken.items() if t is not None and h not in skipped]
        return outcome


async def evaluate_all(
    pool: asyncpg.Pool,
    codes: Sequence[str] | None,
    day: date,
    publishing: Publishing,
    *,
    batch_size: int,
    run_ids: list[UUID],
) -> Outcome:
    """Every household for the programmes ``codes`` (None: all), in batches of one transaction each.

    Programmes are read again for each batch: a version arriving mid-run is used from then on
    (its own run follows), so decisions never step back to the older version.
    """
    total, after = Outcome(), UUID(int=0)
    while True:
        async with pool.acquire() as conn, conn.transaction():
            ids = await store.household_ids_after(conn, after, batch_size)
            if not ids:
                return total
            programmes = await store.load_programmes(conn, codes)
            outcome = await decide_households(
                conn, ids, publishing, skip_locked=True, programmes=programmes, day=day
            )
            await store.queue_households(conn, outcome.skipped)
            total.add(outcome)
            await store.record_run_progress(conn, run_ids, total.households, total.published)
        after = ids[-1]
