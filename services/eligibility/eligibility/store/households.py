"""The household projection (registry.households.v1) and the queue of households to decide again."""

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg
from krousar_common import db, household_facts
from krousar_common.events.households import HouseholdSnapshot

from eligibility import household

PENDING_CHANNEL = "eligibility_pending"  # NOTIFY: households queued or a run requested
DECIDER_LOCK = 7_245_103  # advisory lock class of lock_households (the key within it: a hash of the id)
DECIDING = ", ".join(c if c != "facts" else "facts::text AS facts" for c in household.COLUMNS)

# --- the household projection ------------------------------------------------------------------------


HOUSEHOLD_COLUMNS = [
    "household_id",
    "version",
    "province_code",
    "district_code",
    "commune_code",
    "village_code",
    "poverty_level",
    "status",
    "female_headed",
    "card_status",
    "card_issued_on",
    "card_valid_until",
    "snapshot",
    "facts",
]
_NEWER = (
    " ON CONFLICT (household_id) DO UPDATE SET "
    + ", ".join(f"{c} = EXCLUDED.{c}" for c in HOUSEHOLD_COLUMNS[1:])
    + ", updated_at = now() WHERE households.version < EXCLUDED.version"
)
_UPSERT_HOUSEHOLD = (
    f"INSERT INTO households ({', '.join(HOUSEHOLD_COLUMNS)})"
    f" VALUES ({', '.join(f'${i}' for i in range(1, len(HOUSEHOLD_COLUMNS) + 1))})" + _NEWER
)


def _household_row(snapshot: HouseholdSnapshot, data: dict[str, Any]) -> tuple[Any, ...]:
    """The projection row of a validated snapshot; ``data``, the snapshot as its event carried it,
    is stored as it is (as payments stores it): dumping the model again took 7 % of eligibility's
    CPU while a national import arrived."""
    values = {**household_facts.projection_columns(snapshot), "snapshot": data}
    return tuple(values[c] for c in HOUSEHOLD_COLUMNS)


async def upsert_household(
    conn: asyncpg.Connection, snapshot: HouseholdSnapshot, data: dict[str, Any]
) -> bool:
    """Keep the newest version: an older snapshot arriving late never overwrites a newer one."""
    applied = await conn.fetchval(_UPSERT_HOUSEHOLD + " RETURNING true", *_household_row(snapshot, data))
    return bool(applied)


async def upsert_households(
    conn: asyncpg.Connection, households: Sequence[tuple[HouseholdSnapshot, dict[str, Any]]]
) -> None:
    """``upsert_household`` for a batch of (snapshot, its data): the newest version of each household
    in it (the first of equal ones, as one by one), COPied and upserted in one statement."""
    newest: dict[UUID, tuple[HouseholdSnapshot, dict[str, Any]]] = {}
    for snapshot, data in households:
        kept = newest.get(snapshot.household_id)
        if kept is None or kept[0].version < snapshot.version:
            newest[snapshot.household_id] = (snapshot, data)
    if not newest:
        return
    rows = [_household_row(snapshot, data) for snapshot, data in newest.values()]
    staging = await db.copy_to_staging(conn, "households", HOUSEHOLD_COLUMNS, rows)
    await conn.execute(
        f"INSERT INTO households ({', '.join(HOUSEHOLD_COLUMNS)})"
        f" SELECT {', '.join(HOUSEHOLD_COLUMNS)} FROM {staging}" + _NEWER
    )


async def get_household(conn: asyncpg.Connection, household_id: UUID) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM households WHERE household_id = $1", household_id)


Span = tuple[UUID, UUID]


def households_in(column: str, household_ids: Sequence[UUID], span: Span | None) -> tuple[str, list[Any]]:
    """A condition on ``column`` for a batch of households, and its arguments ($1, $2). ``span``
    (first id, last id): the batch is every household between the two, as in a full evaluation,
    read with one range scan rather than a lookup per household."""
    if span is not None:
        return f"{column} BETWEEN $1 AND $2", list(span)
    return f"{column} = ANY($1::uuid[])", [household_ids]


async def lock_households(
    conn: asyncpg.Connection, household_ids: Sequence[UUID], *, skip_locked: bool
) -> list[asyncpg.Record]:
    """What deciding reads of the households (``household.COLUMNS``), each held by this transaction
    as its decider.

    Whoever decides a household holds its decider lock until commit (a transaction-level advisory
    lock on a hash of its id), so a decision made from older facts never overwrites, or is
    published after, one made from newer facts. Not a row lock: a national run decides every
    household, and locking a row rewrites its page (with the snapshot, over a gigabyte of writes
    and WAL per run). Only deciders take it: the consumer updating a household queues it, and its
    decider then waits its turn. With ``skip_locked`` a household another decider holds is left out
    (the caller queues it again) rather than waited for, so batch deciders never deadlock. A
    transaction holds at most a batch of these locks (2,000 by default): PostgreSQL's lock table
    has room for 64 per connection (19,200 with max_connections = 300).
    """
    lock = (
        "SELECT h FROM unnest($1::uuid[]) AS h WHERE pg_try_advisory_xact_lock($2, hashtext(h::text))"
        if skip_locked
        else "SELECT h, pg_advisory_xact_lock($2, hashtext(h::text)) FROM unnest($1::uuid[]) AS h"
    )
    return await conn.fetch(
        f"WITH held AS MATERIALIZED ({lock}) SELECT {DECIDING} FROM households"
        " WHERE household_id IN (SELECT h FROM held) ORDER BY household_id",
        sorted(household_ids),  # one order for every waiting decider: no deadlock between them
        DECIDER_LOCK,
    )


async def household_rows(conn: asyncpg.Connection, household_ids: Sequence[UUID]) -> list[asyncpg.Record]:
    """What deciding reads of the households (``household.COLUMNS``), not locked."""
    return await conn.fetch(
        f"SELECT {DECIDING} FROM households WHERE household_id = ANY($1::uuid[]) ORDER BY household_id",
        household_ids,
    )


async def lock_snapshot(conn: asyncpg.Connection, household_id: UUID) -> str | None:
    """The household's snapshot (JSON text), row-locked for this transaction."""
    return await conn.fetchval(
        "SELECT snapshot::text FROM households WHERE household_id = $1 FOR UPDATE", household_id
    )


async def snapshot_texts(conn: asyncpg.Connection, household_ids: Sequence[UUID]) -> dict[UUID, str]:
    rows = await conn.fetch(
        "SELECT household_id, snapshot::text AS snapshot FROM households"
        " WHERE household_id = ANY($1::uuid[])",
        household_ids,
    )
    return {r["household_id"]: r["snapshot"] for r in rows}


async def existing_households(conn: asyncpg.Connection, household_ids: Sequence[UUID]) -> list[UUID]:
    rows = await conn.fetch(
        "SELECT household_id FROM households WHERE household_id = ANY($1::uuid[])", household_ids
    )
    return [r["household_id"] for r in rows]


async def household_ids_after(
    conn: asyncpg.Connection, after: UUID, limit: int, *, until: UUID | None = None
) -> list[UUID]:
    """The next ``limit`` ids after ``after`` (and up to ``until``, inclusive, if given)."""
    rows = await conn.fetch(
        "SELECT household_id FROM households WHERE household_id > $1"
        " AND ($3::uuid IS NULL OR household_id <= $3) ORDER BY household_id LIMIT $2",
        after,
        limit,
        until,
    )
    return [r["household_id"] for r in rows]


async def household_count(conn: asyncpg.Connection) -> int:
    return await conn.fetchval("SELECT count(*) FROM households")


async def household_id_bounds(conn: asyncpg.Connection, parts: int) -> list[UUID]:
    """The ids that cut the households, in id order, into ``parts`` ranges of about the same size:
    the last id of every range but the last."""
    count = await household_count(conn)
    bounds = []
    for part in range(1, parts if count >= parts else 1):
        bounds.append(
            await conn.fetchval(
                "SELECT household_id FROM households ORDER BY household_id OFFSET $1 LIMIT 1",
                count * part // parts - 1,
            )
        )
    return bounds


# --- households waiting for a decision ---------------------------------------------------------------


async def queue_households(
    conn: asyncpg.Connection,
    household_ids: Sequence[UUID],
    *,
    event_times: Sequence[datetime | None] | None = None,
) -> None:
    """Queue households to decide again; ``event_times`` (one per household) say when the registry
    event behind each happened, for the decision latency metric."""
    if not household_ids:
        return
    times = list(event_times) if event_times is not None else [None] * len(household_ids)
    await conn.execute(
        "INSERT INTO pending (household_id, event_time) SELECT * FROM unnest($1::uuid[], $2::timestamptz[])",
        list(household_ids),
        times,
    )
    await conn.execute("SELECT pg_notify($1, '')", PENDING_CHANNEL)


async def take_pending(conn: asyncpg.Connection, limit: int) -> dict[UUID, datetime | None]:
    """Remove up to ``limit`` queue entries (rows other deciders hold are skipped): each household
    once, with the oldest registry event time queued for it (None: no event queued it)."""
    rows = await conn.fetch(
        "WITH taken AS (DELETE FROM pending WHERE id IN"
        " (SELECT id FROM pending ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED)"
        " RETURNING household_id, event_time)"
        " SELECT household_id, min(event_time) AS event_time FROM taken"
        " GROUP BY household_id ORDER BY household_id",
        limit,
    )
    return {r["household_id"]: r["event_time"] for r in rows}


async def pending_count(conn: asyncpg.Connection) -> int:
    return await conn.fetchval("SELECT count(*) FROM pending")
