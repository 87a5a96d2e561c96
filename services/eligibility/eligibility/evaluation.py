"""Deciding in batches: load a batch's facts in a handful of queries, decide in Python, write only
the decisions that changed and publish those that changed for payments (outbox, COPY). The same
path serves one household (an enrolment), the queue of changed households, and a full
re-evaluation of every household for every programme (split over processes by ``workers``).

A decision is published again when its outcome changes (eligible, reasons, programme version) and,
while it is eligible, when what payments computes from it changes (household version, enrolment,
PWYC conditions): payments never calls back, so the snapshot it holds must be the current one.
A new payment period alone (the month rolling over) updates the row but publishes nothing.

A national run decides 700,000 households for every programme, so per household it does only what
deciding needs: it reads the projection's compact facts, not the snapshot validated again
(``household``); it compares each decision with what tells a change of the one in force (read with
one range scan per batch) and writes only the changed ones (COPY), those that only move to the
new month's payment with one UPDATE per programme; the cyclic garbage collector is paused while a
batch's objects are made; a household's published decisions travel in one event, which embeds
the stored snapshot's JSON as it is.
"""

import hashlib
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any, NamedTuple
from uuid import UUID

import asyncpg
import orjson
from krousar_common import outbox
from krousar_common.benefits import ConditionEvent
from krousar_common.collector import collector_paused
from krousar_common.events import Envelope, envelope_of
from krousar_common.events.eligibility import EligibilityDecided, Enrolment
from krousar_common.programmes import ProgrammeVersion

from eligibility import domain, store
from eligibility.household import Household

CAMBODIA = timezone(timedelta(hours=7), "ICT")  # no daylight saving time
SOURCE = "krousar/eligibility"
NOWHERE = UUID(int=0)  # before every household id


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


class StoredEnrolment(NamedTuple):
    """The enrolment in force as stored: the fields of the ``Enrolment`` a decision carries, made
    into event data only for the decisions published (deciding reads whether there is one)."""

    enrolment_id: UUID
    payee_type: str
    payee_name: str
    payee_member_id: UUID | None
    channel: str
    account: str | None
    verified_by: str
    verified_on: date

    def data(self) -> dict[str, Any]:
        """As ``Enrolment.model_dump(mode="json")``."""
        member = self.payee_member_id
        return {
            **self._asdict(),
            "enrolment_id": str(self.enrolment_id),
            "payee_member_id": None if member is None else str(member),
            "verified_on": self.verified_on.isoformat(),
        }


class Facts(NamedTuple):
    """Everything a household's decisions depend on besides the programme and the day."""

    household: domain.AnyHousehold
    enrolment: StoredEnrolment | Enrolment | None = None
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


def enrolment_of(row: asyncpg.Record) -> StoredEnrolment:
    return StoredEnrolment(
        row["enrolment_id"],
        row["payee_type"],
        row["payee_name"],
        row["payee_member_id"],
        row["channel"],
        row["account"],
        row["verified_by"],
        row["verified_on"],
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
    conn: asyncpg.Connection,
    rows: Sequence[asyncpg.Record],
    programmes: Sequence[ProgrammeVersion],
    *,
    span: store.Span | None = None,
) -> list[Facts]:
    """Facts of a batch of projection rows (``household.COLUMNS``): one query per kind of fact.
    ``span``: see ``store.households_in``."""
    ids = [r["household_id"] for r in rows]
    in_force = await store.active_enrolments(conn, ids, span=span)
    enrolments = {r["household_id"]: enrolment_of(r) for r in in_force}
    conditions: dict[UUID, list[ConditionEvent]] = defaultdict(list)
    if any(p.conditions is not None for p in programmes):
        for r in await store.conditions_of(conn, ids, span=span):
            conditions[r["household_id"]].append(condition_of(r))
    paid: dict[UUID, set[tuple[str, str]]] = defaultdict(set)
    if any(p.target.exclusions for p in programmes):
        for r in await store.paid_keys(conn, ids, span=span):
            paid[r["household_id"]].add((r["programme_code"], r["period"]))
    with collector_paused():
        return [
            Facts(
                Household(r),
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


class Decided(NamedTuple):
    facts: Facts
    programme: ProgrammeVersion
    decision: domain.Decision
    fingerprint: str


@dataclass
class Changes:
    """What a batch writes and publishes: decisions rewritten, decisions moved to their programme's
    next payment with nothing else changed (most decisions when a month begins) by (programme,
    payment), and the decisions to publish."""

    rewritten: list[tuple[Any, ...]] = field(default_factory=list)
    moved: dict[tuple[str, str | None], list[UUID]] = field(default_factory=lambda: defaultdict(list))
    published: list[Decided] = field(default_factory=list)

    @property
    def written(self) -> int:
        return len(self.rewritten) + sum(len(ids) for ids in self.moved.values())


def compare_decisions(
    batch: Sequence[Facts],
    programmes: Sequence[ProgrammeVersion],
    day: date,
    current: dict[tuple[UUID, str], asyncpg.Record],
    publishing: Publishing,
) -> Changes:
    """Decide every (household, programme) of the batch and compare it with the decision in force
    (``current``: what ``store.current_decisions`` reads, by household and programme). The day it
    was made for alone is no difference; the fingerprint holds eligible, reasons and version."""
    keys = [(programme, domain.current_key(programme, day)) for programme in programmes]
    changes = Changes()
    for facts in batch:
        household, enrolment = facts.household, facts.enrolment
        for programme, key in keys:
            decision = domain.decide_key(
                programme, key, household, enrolment, conditions=facts.conditions, paid=facts.paid
            )
            print_ = fingerprint(decision, facts, programme)
            old = current.get((household.household_id, programme.code))
            if (
                old is not None
                and old["fingerprint"] == print_
                and old["amount_riel"] == decision.amount_riel
            ):
                if old["payment_key"] != decision.payment_key:
                    changes.moved[programme.code, decision.payment_key].append(household.household_id)
                continue
            item = Decided(facts, programme, decision, print_)
            changes.rewritten.append(decision_row(item, day))
            if _publishable(publishing, None if old is None else old["fingerprint"], print_, decision):
                changes.published.append(item)
    return changes


def decision_row(item: Decided, day: date) -> tuple[Any, ...]:
    """``store.DECISION_COLUMNS``."""
    decision = item.decision
    return (
        item.facts.household.household_id,
        decision.programme_code,
        decision.programme_version,
        decision.payment_key,
        decision.eligible,
        decision.reasons,
        decision.amount_riel,
        day,
        item.fingerprint,
    )


def decision_envelope(
    items: Sequence[Decided], snapshot: str, day: date, now: datetime, correlation_id: str
) -> Envelope:
    """The ``EligibilityDecided`` event of one household's published decisions (``items``, one per
    programme), built as plain data: every part was validated already, and the household is its
    stored snapshot (JSON text), written into the event as it is."""
    facts = items[0].facts
    household_id = str(facts.household.household_id)
    pwyc = any(item.programme.conditions is not None for item in items)
    decisions = sorted((item.decision for item in items), key=lambda d: d.programme_code)
    data = {
        "household_id": household_id,
        "effective_on": day,
        "decided_at": now,
        "household": orjson.Fragment(snapshot),
        "enrolment": enrolment_data(facts.enrolment),
        "conditions": [c.model_dump(mode="json") for c in facts.conditions] if pwyc else [],
        "decisions": [
            {
                "programme_code": d.programme_code,
                "programme_version": d.programme_version,
                "eligible": d.eligible,
                "reasons": list(d.reasons),
            }
            for d in decisions
        ],
    }
    return envelope_of(
        EligibilityDecided, data, source=SOURCE, subject=household_id, correlation_id=correlation_id
    )


def enrolment_data(enrolment: StoredEnrolment | Enrolment | None) -> dict[str, Any] | None:
    if enrolment is None:
        return None
    if isinstance(enrolment, StoredEnrolment):
        return enrolment.data()
    return enrolment.model_dump(mode="json")


def _publishable(
    publishing: Publishing, previous: str | None, print_: str, decision: domain.Decision
) -> bool:
    """Whether a written decision is published; ``previous`` is the fingerprint of the decision it
    replaces (None: the first one)."""
    if publishing.topic is None:
        return False
    if previous is None:
        # Never decided before and the programme isn't running: nothing for payments to learn
        # (no decision = not eligible), and a national register would publish 700,000 of them
        # for every past programme. Stored, shown by the API, published once it changes.
        return decision.payment_key is not None
    return previous != print_


async def decide_batch(
    conn: asyncpg.Connection,
    rows: Sequence[asyncpg.Record],
    programmes: Sequence[ProgrammeVersion],
    day: date,
    publishing: Publishing,
    *,
    span: store.Span | None = None,
) -> Outcome:
    """Decide every (household, programme) of the batch; write and publish what changed. ``span``:
    see ``store.households_in``."""
    if not rows or not programmes:
        return Outcome(households=len(rows))
    ids, codes = [r["household_id"] for r in rows], [p.code for p in programmes]
    batch = await load_facts(conn, rows, programmes, span=span)
    in_force = await store.current_decisions(conn, ids, codes, span=span)
    with collector_paused():
        current = {(r["household_id"], r["programme_code"]): r for r in in_force}
        changes = compare_decisions(batch, programmes, day, current, publishing)
    await store.write_decisions(conn, changes.rewritten)
    for (code, key), moved in changes.moved.items():
        await store.move_decisions(conn, code, key, day, moved)
    published = changes.published
    events = await decision_events(conn, published, day, publishing) if published else []
    if events:
        await outbox.enqueue_many(conn, events)
    return Outcome(households=len(rows), written=changes.written, published=len(published))


async def decision_events(
    conn: asyncpg.Connection, published: Sequence[Decided], day: date, publishing: Publishing
) -> list[tuple[str, Envelope]]:
    """One event per household, with its decisions published now."""
    assert publishing.topic is not None  # _publishable publishes nothing without a topic
    by_household: dict[UUID, list[Decided]] = defaultdict(list)
    for item in published:
        by_household[item.facts.household.household_id].append(item)
    snapshots = await store.snapshot_texts(conn, list(by_household))
    now = datetime.now(UTC)
    return [
        (
            publishing.topic,
            decision_envelope(items, snapshots[household_id], day, now, publishing.correlation_id),
        )
        for household_id, items in by_household.items()
    ]


# --- entry points ----------------------------------------------------------------------------------


async def decide_households(
    conn: asyncpg.Connection,
    household_ids: Sequence[UUID],
    publishing: Publishing,
    *,
    skip_locked: bool,
    programmes: Sequence[ProgrammeVersion] | None = None,
    day: date | None = None,
    span: store.Span | None = None,
) -> Outcome:
    """Decide these households (for every programme unless given) in the caller's transaction.

    With ``skip_locked``, households another transaction holds are returned in ``skipped`` (queue
    them again) rather than waited for. ``span``: see ``store.households_in``.
    """
    rows = await store.lock_households(conn, household_ids, skip_locked=skip_locked)
    if programmes is None:
        programmes = await store.load_programmes(conn)
    day = day or await current_day(conn)
    outcome = await decide_batch(conn, rows, programmes, day, publishing, span=span)
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
    after: UUID = NOWHERE,
    until: UUID | None = None,
) -> Outcome:
    """Every household (with an id after ``after`` and up to ``until``) for the programmes ``codes``
    (None: all), in batches of one transaction each.

    Programmes are read again for each batch: a version arriving mid-run is used from then on
    (its own run follows), so decisions never step back to the older version.
    """
    total = Outcome()
    while True:
        async with pool.acquire() as conn:
            async with conn.transaction():
                ids = await store.household_ids_after(conn, after, batch_size, until=until)
                if not ids:
                    return total
                programmes = await store.load_programmes(conn, codes)
                outcome = await decide_households(
                    conn,
                    ids,
                    publishing,
                    skip_locked=True,
                    programmes=programmes,
                    day=day,
                    span=(ids[0], ids[-1]),  # every household between the two
                )
                await store.queue_households(conn, outcome.skipped)
            # After the commit: processes sharing a run never wait for each other on its row.
            await store.record_run_progress(conn, run_ids, outcome.households, outcome.published)
        total.add(outcome)
        after = ids[-1]
