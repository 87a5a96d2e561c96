"""Who was paid: payments.instructions.v1 joined with payments.status.v1 (for exclusions)."""

from collections.abc import Sequence
from typing import Any
from uuid import UUID

import asyncpg

from eligibility.store.households import Span, households_in

# --- who was paid ------------------------------------------------------------------------------------


async def insert_instruction(
    conn: asyncpg.Connection, payment_id: UUID, household_id: UUID, programme_code: str, period: str
) -> None:
    await conn.execute(
        "INSERT INTO payment_instructions (payment_id, household_id, programme_code, period)"
        " VALUES ($1, $2, $3, $4) ON CONFLICT (payment_id) DO NOTHING",
        payment_id,
        household_id,
        programme_code,
        period,
    )


async def upsert_status(
    conn: asyncpg.Connection, payment_id: UUID, household_id: UUID, status: str, reported_at: Any
) -> None:
    """The latest report wins (a payment can be FAILED, then PAID on a retry)."""
    await conn.execute(
        "INSERT INTO payment_statuses (payment_id, household_id, status, reported_at)"
        " VALUES ($1, $2, $3, $4) ON CONFLICT (payment_id) DO UPDATE SET status = EXCLUDED.status,"
        " reported_at = EXCLUDED.reported_at WHERE payment_statuses.reported_at <= EXCLUDED.reported_at",
        payment_id,
        household_id,
        status,
        reported_at,
    )


async def instruction_programme(conn: asyncpg.Connection, payment_id: UUID) -> str | None:
    return await conn.fetchval(
        "SELECT programme_code FROM payment_instructions WHERE payment_id = $1", payment_id
    )


async def is_excluded_by_any(conn: asyncpg.Connection, programme_code: str) -> bool:
    """Whether some programme excludes households paid by ``programme_code``."""
    return await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM programmes WHERE definition->'target'->'exclusions'"
        " @> jsonb_build_array(jsonb_build_object('programme_code', $1::text)))",
        programme_code,
    )


async def paid_keys(
    conn: asyncpg.Connection, household_ids: Sequence[UUID], *, span: Span | None = None
) -> list[asyncpg.Record]:
    where, args = households_in("i.household_id", household_ids, span)
    return await conn.fetch(
        "SELECT i.household_id, i.programme_code, i.period FROM payment_instructions i"
        f" JOIN payment_statuses s USING (payment_id) WHERE {where} AND s.status = 'PAID'",
        *args,
    )
