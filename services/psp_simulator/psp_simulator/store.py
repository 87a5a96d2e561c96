"""SQL of the PSP simulator."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg
from krousar_common import outbox

SETTLEMENT_COLUMNS = (
    "payment_id",
    "run_id",
    "household_id",
    "amount_riel",
    "status",
    "reason",
    "report_twice",
)


@dataclass(frozen=True)
class Delays:
    """How long after its instruction a payment is reported: settled (PAID, FAILED) or UNCLAIMED."""

    settle: timedelta
    unclaimed: timedelta


async def record_instructions(
    conn: asyncpg.Connection, rows: list[tuple[Any, ...]], *, delays: Delays, now: datetime
) -> int:
    """Hold a batch of instructions (``SETTLEMENT_COLUMNS``, distinct payment ids) with one
    statement, each due ``delays`` after ``now``; how many were new (the others repeat a payment
    id held already, and are counted)."""
    if not rows:
        return 0
    columns = list(zip(*rows, strict=True))
    return await conn.fetchval(
        f"WITH held AS (INSERT INTO settlements ({', '.join(SETTLEMENT_COLUMNS)}, due_at)"
        " SELECT *, $8::timestamptz + CASE WHEN status = 'UNCLAIMED' THEN $9::interval ELSE $10::interval END"
        " FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::bigint[], $5::text[], $6::text[],"
        " $7::boolean[])"
        " AS i(payment_id, run_id, household_id, amount_riel, status, reason, report_twice)"
        " ON CONFLICT (payment_id) DO UPDATE"
        " SET instructions_received = settlements.instructions_received + 1"
        " RETURNING instructions_received)"
        " SELECT count(*) FILTER (WHERE instructions_received = 1) FROM held",
        *[list(c) for c in columns],
        now,
        delays.unclaimed,
        delays.settle,
    )


async def count_repeats(conn: asyncpg.Connection, repeats: dict[UUID, int]) -> None:
    """More instructions of payment ids held already (a batch that instructs one twice)."""
    await conn.execute(
        "UPDATE settlements s SET instructions_received = s.instructions_received + r.n"
        " FROM unnest($1::uuid[], $2::int[]) AS r(payment_id, n) WHERE s.payment_id = r.payment_id",
        list(repeats),
        list(repeats.values()),
    )


# Due settlements become PaymentStatusReported envelopes in the outbox, one statement a batch:
# PostgreSQL takes the due rows (locked: a second reporter skips them), marks them reported and
# writes one event for each, two (with distinct ids) for one to be reported twice. It writes each
# envelope (the contract's, checked on a sample of every batch: jobs.py) around the parts every
# event of the batch shares ($4, $5: outbox.json_members).
_REPORT_DUE = """
WITH due AS (
    SELECT payment_id FROM settlements
    WHERE reported_at IS NULL AND due_at <= $1 ORDER BY due_at LIMIT $2 FOR UPDATE SKIP LOCKED
), reported AS (
    -- Looked up by key: joined with "due", the planner reads every settlement held (a hash join).
    UPDATE settlements s SET reported_at = $1 WHERE s.payment_id = ANY(ARRAY(SELECT payment_id FROM due))
    RETURNING s.payment_id, s.run_id, s.household_id, s.status, s.reason, s.report_twice, s.due_at
), copies AS MATERIALIZED (
    SELECT reported.*, copy, uuid7() AS event_id
    FROM reported, generate_series(1, CASE WHEN report_twice THEN 2 ELSE 1 END) AS copy
), outboxed AS (
    INSERT INTO outbox (event_id, topic, key, event_type, payload)
    SELECT event_id, $3, household_id::text, $6, convert_to(
        '{"id":"' || event_id || '","subject":"' || household_id || '","correlation_id":"psp-' || payment_id
        || '",' || $4 || ',"data":{"payment_id":"' || payment_id || '","run_id":"' || run_id
        || '","household_id":"' || household_id || '","status":"' || status
        || '","reason":' || coalesce(to_json(reason)::text, 'null') || ',' || $5 || '}}', 'UTF8')
    FROM copies ORDER BY due_at, payment_id, copy
    RETURNING payload
)
SELECT (SELECT count(*) FROM reported) AS settled,
       (SELECT coalesce(json_object_agg(status, n), '{}') FROM
            (SELECT status, count(*) AS n FROM copies GROUP BY status) AS c) AS statuses,
       (SELECT payload FROM outboxed LIMIT 1) AS sample
"""


async def report_due(
    conn: asyncpg.Connection,
    now: datetime,
    limit: int,
    *,
    topic: str,
    event_type: str,
    schema_version: int,
    source: str,
) -> asyncpg.Record:
    """Report the settlements due by ``now``: (settled, statuses {status: events}, sample payload)."""
    envelope = {
        "source": source,
        "type": event_type,
        "specversion": "1.0",
        "time": now.isoformat(),
        "datacontenttype": "application/json",
        "schema_version": schema_version,
    }
    return await conn.fetchrow(
        _REPORT_DUE,
        now,
        limit,
        topic,
        outbox.json_members(envelope),
        outbox.json_members({"reported_at": now.isoformat()}),
        event_type,
    )


async def summary(conn: asyncpg.Connection, run_id: UUID | None) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT status, count(*) AS payments, count(reported_at) AS reported,"
        " sum(amount_riel) AS amount_riel, count(*) FILTER (WHERE report_twice) AS reported_twice,"
        " count(*) FILTER (WHERE instructions_received > 1) AS instructed_more_than_once"
        " FROM settlements WHERE $1::uuid IS NULL OR run_id = $1 GROUP BY status ORDER BY status",
        run_id,
    )
