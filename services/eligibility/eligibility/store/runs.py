"""The clock and full evaluation runs."""

from datetime import date
from uuid import UUID

import asyncpg

from eligibility.store.households import PENDING_CHANNEL

# --- the clock and full evaluations ------------------------------------------------------------------


async def get_clock(conn: asyncpg.Connection) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT day, held, set_by, set_at FROM clock")


async def set_clock(conn: asyncpg.Connection, day: date, *, held: bool, by: str) -> None:
    await conn.execute(
        "INSERT INTO clock (day, held, set_by) VALUES ($1, $2, $3) ON CONFLICT (singleton)"
        " DO UPDATE SET day = EXCLUDED.day, held = EXCLUDED.held, set_by = EXCLUDED.set_by, set_at = now()",
        day,
        held,
        by,
    )


async def insert_run(
    conn: asyncpg.Connection, run_id: UUID, *, programmes: list[str] | None, reason: str, by: str
) -> None:
    await conn.execute(
        "INSERT INTO evaluation_runs (run_id, programmes, reason, requested_by) VALUES ($1, $2, $3, $4)",
        run_id,
        programmes,
        reason,
        by,
    )
    await conn.execute("SELECT pg_notify($1, '')", PENDING_CHANNEL)


async def claim_runs(conn: asyncpg.Connection, day: date) -> list[asyncpg.Record]:
    """Every run not done yet (RUNNING ones were interrupted: the caller holds the evaluator lock)."""
    return await conn.fetch(
        "UPDATE evaluation_runs SET status = 'RUNNING', started_at = now(), on_day = $1,"
        " households = 0, decisions_changed = 0 WHERE status IN ('PENDING', 'RUNNING')"
        " RETURNING run_id, programmes",
        day,
    )


async def record_run_progress(
    conn: asyncpg.Connection, run_ids: list[UUID], households: int, changed: int
) -> None:
    """Add a batch's counts (worker processes of one run each add theirs)."""
    await conn.execute(
        "UPDATE evaluation_runs SET households = households + $2,"
        " decisions_changed = decisions_changed + $3 WHERE run_id = ANY($1::uuid[])",
        run_ids,
        households,
        changed,
    )


async def finish_runs(conn: asyncpg.Connection, run_ids: list[UUID], status: str, error: str | None) -> None:
    await conn.execute(
        "UPDATE evaluation_runs SET status = $2, error = $3, finished_at = now()"
        " WHERE run_id = ANY($1::uuid[])",
        run_ids,
        status,
        error,
    )


async def latest_runs(conn: asyncpg.Connection, limit: int) -> list[asyncpg.Record]:
    return await conn.fetch("SELECT * FROM evaluation_runs ORDER BY requested_at DESC LIMIT $1", limit)


async def get_run(conn: asyncpg.Connection, run_id: UUID) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM evaluation_runs WHERE run_id = $1", run_id)
