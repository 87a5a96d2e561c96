"""Import a round: check every household like a single registration would, then write the good
ones with COPY in one transaction (all or nothing) and their events through the outbox.

The file is surveyed first (its households and what ties them), then read again batch by batch:
a thread reads and prepares a batch (parse, check, ask the registry, plan the rows and events)
while PostgreSQL stores the batch before, so no more than two batches are in memory. Two
households of a file depend on each other through a national ID (both are rejected when they
share one) or a head (both are flagged possible duplicates); the households that share such a
key with another all go into the last batch. Every other batch's households share nothing with
any other household of the file: what the registry says about them is the same before and after
other batches are written, so it is asked outside the import's transaction, and no batch waits
for another.
"""

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import asyncpg
from krousar_common import outbox, topics
from krousar_common.auth import Principal
from krousar_common.errors import ServiceError
from krousar_common.events import Envelope
from krousar_common.events import households as ev

from registration import service, store
from registration.domain import cards, geography
from registration.imports import csv_format, queries
from registration.imports.csv_format import HouseholdRows, Layout, ParsedHousehold, RowError
from registration.snapshots import snapshot_data

Progress = Callable[[int, int], Awaitable[None]]


@dataclass
class Checked:
    parsed: ParsedHousehold
    village: geography.Village
    assessment: Any


@dataclass
class ImportResult:
    imported: list[UUID] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)


def check_household(parsed: ParsedHousehold, ctx: service.Context) -> Checked | RowError:
    """The checks of a single registration that need no database: village, scope, answers."""
    line, ref = parsed.rows[0], parsed.ref
    try:
        village = service.resolve_village(parsed.command.village_code)
        ctx.actor.ensure_commune(village.commune_code)
        return Checked(parsed, village, service.score_command(parsed.command, village))
    except ServiceError as exc:
        errors = exc.extra.get("errors") or [{"field": exc.field or "household", "message": exc.detail}]
        return RowError(
            line, ref, errors[0]["field"].removeprefix("answers."), "; ".join(e["message"] for e in errors)
        )


def parse_and_check(
    layout: Layout, households: list[HouseholdRows], actor: Principal
) -> tuple[list[Checked], list[RowError]]:
    """Everything about households that needs no database (run off the event loop)."""
    parsed, errors = csv_format.parse_households(layout, households)
    ctx = service.Context(actor, "", None)  # type: ignore[arg-type]  # the checks read only the actor
    checked = []
    for item in parsed:
        outcome = check_household(item, ctx)
        (errors.append if isinstance(outcome, RowError) else checked.append)(outcome)
    return checked, errors


def batches(
    found: csv_format.Survey, households: Iterable[HouseholdRows], size: int
) -> Iterator[list[HouseholdRows]]:
    """Batches of ``size`` households in file order, and last (whatever its size) every household
    that shares an identity key with another household of the file."""
    alone: list[HouseholdRows] = []
    tied = []
    for household in households:
        if household.ref in found.tied:
            tied.append(household)
            continue
        alone.append(household)
        if len(alone) == size:
            yield alone
            alone = []
    if alone:
        yield alone
    if tied:
        yield tied


def national_id_conflicts(checked: list[Checked], held: dict[str, UUID]) -> dict[str, RowError]:
    """Households (by ref) whose national ID is held elsewhere or appears twice in the file."""
    in_file = Counter(m.national_id for c in checked for m in c.parsed.command.members if m.national_id)
    conflicts = {}
    for c in checked:
        for member in c.parsed.command.members:
            nid = member.national_id
            if nid and nid in held:
                message = f"national ID {nid} already belongs to active household {held[nid]}"
            elif nid and in_file[nid] > 1:
                message = f"national ID {nid} appears in more than one household of this file"
            else:
                continue
            conflicts[c.parsed.ref] = RowError(c.parsed.rows[0], c.parsed.ref, "national_id", message)
    return conflicts


async def import_round(
    conn: asyncpg.Connection,
    registry: asyncpg.Pool,
    found: csv_format.Survey,
    households: Iterable[HouseholdRows],
    ctx: service.Context,
    progress: Progress,
) -> ImportResult:
    """Check and write the surveyed file's ``households`` (read as they are needed) on ``conn``
    (the import's transaction); ``registry`` lends the connections that ask about held national
    IDs and existing heads meanwhile."""
    result = ImportResult()
    villages = _villages(found)
    numbers = await CardNumbers.reserve(conn, villages)
    classifications = await queries.classifications_of(conn, set(villages))
    done = 0
    await progress(done, found.households)

    async def prepare(batch: list[HouseholdRows]) -> tuple[_Batch, list[RowError]]:
        return await _prepare(found.layout, batch, registry, numbers, classifications, ctx)

    cut = batches(found, households, ctx.settings.import_batch_size)
    async for (batch, errors), batch_size in _prepared_one_ahead(cut, prepare):
        await _copy(conn, batch)
        result.imported += [p.household["household_id"] for p in batch.plans]
        result.errors += errors
        done += batch_size
        await progress(done, found.households)
    await numbers.give_back_unused(conn)
    return result


def _villages(found: csv_format.Survey) -> Counter[str]:
    """Households per gazetteer village, as their first row names it (unknown codes left out)."""
    villages: Counter[str] = Counter()
    for code, households in found.villages.items():
        if (village := geography.get_village(code)) is not None:
            villages[village.code] += households
    return villages


class CardNumbers:
    """The file's card numbers, reserved before anything is written: as many in each village as
    the file has households there, handed out as poor households are planned, the unused ones
    given back before commit, so that a village's last number still counts its cards. Each
    village's sequence row stays locked until the import commits: registrations there wait."""

    def __init__(self, first: dict[str, int], reserved: Counter[str]) -> None:
        self.next_seq = first
        self.reserved = reserved
        self.used: Counter[str] = Counter()

    @classmethod
    async def reserve(cls, conn: asyncpg.Connection, villages: Counter[str]) -> "CardNumbers":
        last = await queries.reserve_card_seqs(conn, dict(villages))
        return cls({v: last[v] - count + 1 for v, count in villages.items()}, villages)

    def take(self, village_code: str) -> str:
        number = cards.card_number(village_code, self.next_seq[village_code] + self.used[village_code])
        self.used[village_code] += 1
        return number

    async def give_back_unused(self, conn: asyncpg.Connection) -> None:
        await queries.give_back_card_seqs(conn, self.reserved - self.used)


async def _prepared_one_ahead(
    all_batches: Iterator[list[HouseholdRows]],
    prepare: Callable[[list[HouseholdRows]], Awaitable[tuple["_Batch", list[RowError]]]],
) -> AsyncIterator[tuple[tuple["_Batch", list[RowError]], int]]:
    """Each batch read and prepared, with its size; the next one is read (off the event loop: it
    parses the file) and prepared while the caller writes this one."""

    async def read_and_prepare() -> tuple[tuple[_Batch, list[RowError]], int] | None:
        batch = await asyncio.to_thread(next, all_batches, None)
        return None if batch is None else (await prepare(batch), len(batch))

    preparing = asyncio.create_task(read_and_prepare())
    try:
        while (prepared := await preparing) is not None:
            preparing = asyncio.create_task(read_and_prepare())
            yield prepared
    finally:
        preparing.cancel()


async def _prepare(
    layout: Layout,
    households: list[HouseholdRows],
    registry: asyncpg.Pool,
    numbers: CardNumbers,
    classifications: dict[str, list[Any]],
    ctx: service.Context,
) -> tuple["_Batch", list[RowError]]:
    checked, errors = await asyncio.to_thread(parse_and_check, layout, households, ctx.actor)
    heads = [_head_key(c) for c in checked]
    async with registry.acquire() as reader:
        held = await store.households_holding_national_ids(reader, _national_ids(checked))
        existing = await queries.existing_heads(reader, heads)
    conflicts = national_id_conflicts(checked, held)
    good = [(c, head) for c, head in zip(checked, heads, strict=True) if c.parsed.ref not in conflicts]
    seen = Counter(head for _, head in good)
    facts = _Facts(
        possible_duplicates={c.parsed.ref for c, head in good if head in existing or seen[head] > 1},
        card_numbers={
            c.parsed.ref: numbers.take(c.village.code)
            for c, _ in good
            if service.is_poor(c.assessment.model_level)
        },
        classifications=classifications,
    )
    batch = await asyncio.to_thread(_build, [c for c, _ in good], facts, ctx)
    return batch, errors + list(conflicts.values())


def _national_ids(checked: Iterable[Checked]) -> list[str]:
    return [m.national_id for c in checked for m in c.parsed.command.members if m.national_id]


@dataclass(frozen=True)
class _Facts:
    """What the registry says about a batch's good households."""

    possible_duplicates: set[str]  # refs
    card_numbers: dict[str, str]  # ref -> card number, for the poor
    classifications: dict[str, list[Any]]  # village code -> its reclassifications


def _head_key(checked: Checked) -> tuple[str, Any, str]:
    head = next(m for m in checked.parsed.command.members if m.relationship == ev.Relationship.HEAD)
    return head.name_km, head.date_of_birth, checked.village.code


@dataclass
class _Batch:
    """The rows and events of a chunk of households, ready to COPY."""

    plans: list[service.Registration]
    events: list[tuple[str, Envelope]]


def _build(chunk: list[Checked], facts: _Facts, ctx: service.Context) -> _Batch:
    topic = ctx.settings.topic(topics.HOUSEHOLDS.name)
    plans = [
        service.plan_registration(
            c.parsed.command,
            c.village,
            c.assessment,
            actor=ctx.actor.user_id,
            possible_duplicate=c.parsed.ref in facts.possible_duplicates,
            card_number=facts.card_numbers.get(c.parsed.ref),
            card_valid_years=ctx.settings.card_valid_years,
        )
        for c in chunk
    ]
    return _Batch(plans, [(topic, _event(p, facts.classifications, ctx)) for p in plans])


async def _copy(conn: asyncpg.Connection, batch: _Batch) -> None:
    plans = batch.plans
    await store.copy_rows(conn, "households", store.HOUSEHOLD_COLUMNS, [p.household for p in plans])
    await store.copy_rows(conn, "members", store.MEMBER_COLUMNS, [m for p in plans for m in p.members])
    await store.copy_rows(conn, "assessments", store.ASSESSMENT_COLUMNS, [p.assessment for p in plans])
    await store.copy_rows(conn, "cards", store.CARD_COLUMNS, [p.card for p in plans if p.card])
    await store.copy_rows(conn, "audit_log", store.AUDIT_COLUMNS, [p.audit for p in plans])
    await outbox.enqueue_many(conn, batch.events)


def _event(
    plan: service.Registration, classifications: dict[str, list[Any]], ctx: service.Context
) -> Envelope:
    data = snapshot_data(
        plan.household,
        plan.members,
        plan.assessment,
        plan.card,
        classifications.get(plan.household["village_code"], []),
    )
    return service.registered_envelope(data, ctx.correlation_id)
