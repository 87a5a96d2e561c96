"""Import a parsed round: check every household like a single registration would, then write
the good ones with COPY in one transaction (all or nothing) and their events via the outbox."""

import asyncio
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
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
from registration.imports.csv_format import ParsedHousehold, RowError
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
    conn: asyncpg.Connection, checked: list[Checked], ctx: service.Context, progress: Progress
) -> ImportResult:
    """Write the households that passed ``check_household``, after the checks that need the database."""
    result = ImportResult()
    held = await store.households_holding_national_ids(
        conn, [m.national_id for c in checked for m in c.parsed.command.members if m.national_id]
    )
    conflicts = national_id_conflicts(checked, held)
    result.errors += conflicts.values()
    good = [c for c in checked if c.parsed.ref not in conflicts]
    await progress(0, len(good))
    await queries.compress_large_values_fast(conn)
    facts = await _database_facts(conn, good)
    result.imported = await _write(conn, good, facts, ctx, progress)
    return result


def parse_and_check(text: str, actor: Principal) -> tuple[list[Checked], list[RowError]]:
    """Everything about a file that needs no database (run off the event loop)."""
    parsed, errors = csv_format.parse_text(text)
    ctx = service.Context(actor, "", None)  # type: ignore[arg-type]  # the checks read only the actor
    checked = []
    for item in parsed:
        outcome = check_household(item, ctx)
        (errors.append if isinstance(outcome, RowError) else checked.append)(outcome)
    return checked, errors


@dataclass(frozen=True)
class _Facts:
    """What the database says about a file's good households, asked once for the whole file."""

    possible_duplicates: set[str]  # refs
    card_numbers: dict[str, str]  # ref -> card number, for the poor
    classifications: dict[str, list[Any]]  # village code -> its reclassifications


async def _database_facts(conn: asyncpg.Connection, good: list[Checked]) -> _Facts:
    heads = [_head_key(c) for c in good]
    existing = await queries.existing_heads(conn, heads)
    seen_in_file = Counter(heads)
    duplicates = {
        c.parsed.ref
        for c, head in zip(good, heads, strict=True)
        if head in existing or seen_in_file[head] > 1
    }
    card_numbers = await _reserve_card_numbers(conn, good)
    classifications = await queries.classifications_of(conn, {c.village.code for c in good})
    return _Facts(duplicates, card_numbers, classifications)


def _head_key(checked: Checked) -> tuple[str, Any, str]:
    head = next(m for m in checked.parsed.command.members if m.relationship == ev.Relationship.HEAD)
    return head.name_km, head.date_of_birth, checked.village.code


async def _reserve_card_numbers(conn: asyncpg.Connection, good: list[Checked]) -> dict[str, str]:
    """One sequence reservation per village for all its poor households (refs → card numbers)."""
    poor_by_village: dict[str, list[str]] = defaultdict(list)
    for c in good:
        if service.is_poor(c.assessment.model_level):
            poor_by_village[c.village.code].append(c.parsed.ref)
    last = await queries.reserve_card_seqs(conn, {v: len(refs) for v, refs in poor_by_village.items()})
    numbers = {}
    for village, refs in poor_by_village.items():
        first = last[village] - len(refs) + 1
        numbers.update({ref: cards.card_number(village, first + i) for i, ref in enumerate(refs)})
    return numbers


CHUNK = 5000


@dataclass
class _Batch:
    """The rows and events of a chunk of households, ready to COPY."""

    plans: list[service.Registration]
    events: list[tuple[str, Envelope]]


async def _write(
    conn: asyncpg.Connection, good: list[Checked], facts: _Facts, ctx: service.Context, progress: Progress
) -> list[UUID]:
    imported: list[UUID] = []
    chunks = [good[start : start + CHUNK] for start in range(0, len(good), CHUNK)]
    async for batch in _built_ahead(chunks, facts, ctx):
        await _copy(conn, batch)
        imported += [p.household["household_id"] for p in batch.plans]
        await progress(len(imported), len(good))
    return imported


async def _built_ahead(
    chunks: list[list[Checked]], facts: _Facts, ctx: service.Context
) -> AsyncIterator[_Batch]:
    """Each chunk's batch in turn, the next one building in a thread while this one is written:
    PostgreSQL stores a chunk while Python plans the next, instead of each waiting for the other."""
    building = None
    for chunk in chunks:
        previous, building = building, asyncio.create_task(asyncio.to_thread(_build, chunk, facts, ctx))
        if previous is not None:
            yield await previous
    if building is not None:
        yield await building


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
