"""The household projection (registry.households.v1) and the queue of households to decide again."""

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

import asyncpg
from krousar_common.events.households import HouseholdSnapshot

PENDING_CHANNEL = "eligibility_pending"  # NOTIFY: households queued or a run requested

# --- the household projection ------------------------------------------------------------------------


async def upsert_household(conn: asyncpg.Connection, snapshot: HouseholdSnapshot) -> bool:
    """Keep the newest version: an older snapshot arriving late never overwrites a newer one."""
    card = snapshot.card
    applied = await conn.fetchval(
        "INSERT INTO households (household_id, version, province_code, district_code, commune_code,"
        " village_code, poverty_level, status, female_headed, card_status, card_issued_on,"
        " card_valid_until, snapshot) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
        " ON CONFLICT (household_id) DO UPDATE SET version = EXCLUDED.version,"
        " province_code = EXCLUDED.province_code, district_code = EXCLUDED.district_code,"
        " commune_code = EXCLUDED.commune_code, village_code = EXCLUDED.village_code,"
        " poverty_level = EXCLUDED.poverty_level, status = EXCLUDED.status,"
        " female_headed = EXCLUDED.female_headed, card_status = EXCLUDED.card_status,"
        " card_issued_on = EXCLUDED.card_issued_on, card_valid_until = EXCLUDED.card_valid_until,"
        " snapshot = EXCLUDED.snapshot, updated_at = now() WHERE households.version < EXCLUDED.version"
        " RETURNING true",
        snapshot.household_id,
        snapshot.version,
        snapshot.province_code,
        snapshot.district_code,
        snapshot.commune_code,
        snapshot.village_code,
        snapshot.poverty_level,
        snapshot.status,
        snapshot.female_headed,
        card.status if card else None,
        card.issued_on if card else None,
        card.valid_until if card else None,
        snapshot.model_dump(mode="json"),
    )
    return bool(applied)


async def get_household(conn: asyncpg.Connection, household_id: UUID) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM households WHERE household_id = $1", household_id)


async def lock_households(
    conn: asyncpg.Connection, household_ids: Sequence[UUID], *, skip_locked: bool
) -> list[asyncpg.Record]:
    """(household_id, snapshot as JSON text) of the households, row-locked for this transaction.

    With ``skip_locked`` a household another transaction is deciding (or updating) is left out:
    the caller queues it again instead of waiting, so batch writers never deadlock.
    """
    skip = " SKIP LOCKED" if skip_locked else ""
    return await conn.fetch(
        "SELECT household_id, snapshot::text AS snapshot FROM households"
        f" WHERE household_id = ANY($1::uuid[]) ORDER BY household_id FOR UPDATE{skip}",
        household_ids,
    )


async def existing_households(conn: asyncpg.Connection, household_ids: Sequence[UUID]) -> list[UUID]:
    rows = await conn.fetch(
        "SELECT household_id FROM households WHERE household_id = ANY($1::uuid[])", household_ids
    )
    return [r["household_id"] for r in rows]


async def household_ids_after(conn: asyncpg.Connection, after: UUID, limit: int) -> list[UUID]:
    rows = await conn.fetch(
        "SELECT household_id FROM households WHERE household_id > $1 ORDER BY household_id LIMIT $2",
        after,
        limit,
    )
    return [r["household_id"] for r in rows]


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
