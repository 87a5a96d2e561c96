"""SQL of the PSP simulator."""

from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg


async def record_instruction(conn: asyncpg.Connection, row: dict[str, Any]) -> bool:
    """Hold a new instruction; False (and counted) when the payment id is held already."""
    return await conn.fetchval(
        "INSERT INTO settlements (payment_id, run_id, household_id, amount_riel, status, reason,"
        " report_twice, due_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        " ON CONFLICT (payment_id) DO UPDATE"
        " SET instructions_received = settlements.instructions_received + 1"
        " RETURNING instructions_received = 1",
        row["payment_id"],
        row["run_id"],
        row["household_id"],
        row["amount_riel"],
        row["status"],
        row["reason"],
        row["report_twice"],
        row["due_at"],
    )


async def due_settlements(conn: asyncpg.Connection, now: datetime, limit: int) -> list[asyncpg.Record]:
    """Settlements whose time has come, locked so a second reporter skips them."""
    return await conn.fetch(
        "SELECT payment_id, run_id, household_id, status, reason, report_twice FROM settlements"
        " WHERE reported_at IS NULL AND due_at <= $1 ORDER BY due_at LIMIT $2 FOR UPDATE SKIP LOCKED",
        now,
        limit,
    )


async def mark_reported(conn: asyncpg.Connection, payment_ids: list[UUID], now: datetime) -> None:
    await conn.execute(
        "UPDATE settlements SET reported_at = $2 WHERE payment_id = ANY($1::uuid[])", payment_ids, now
    )


async def summary(conn: asyncpg.Connection, run_id: UUID | None) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT status, count(*) AS payments, count(reported_at) AS reported,"
        " sum(amount_riel) AS amount_riel, count(*) FILTER (WHERE report_twice) AS reported_twice,"
        " count(*) FILTER (WHERE instructions_received > 1) AS instructed_more_than_once"
        " FROM settlements WHERE $1::uuid IS NULL OR run_id = $1 GROUP BY status ORDER BY status",
        run_id,
    )
