"""SQL of the payments service: one function per query, the connection first, never a commit."""

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg
from krousar_common import household_facts
from krousar_common.events.eligibility import EligibilityDecided
from krousar_common.events.payments import PaymentStatusReported
from krousar_common.programmes import ProgrammeVersion

LINE_COLUMNS = [
    "payment_id",
    "run_id",
    "programme_code",
    "period",
    "household_id",
    "component",
    "attempt",
    "amount_riel",
    "terms",
    "explanation",
    "province_code",
    "commune_code",
    "village_code",
    "location_category",
    "poverty_level",
    "payee_name",
    "channel",
    "account",
    "status",
]
LEFT_OUT_COLUMNS = ["run_id", "household_id", "reason", "detail"]
RUN_COLUMNS = [
    "run_id",
    "programme_code",
    "programme_version",
    "period",
    "rules_day",
    "available_from",
    "claim_until",
    "state",
    "budget_ceiling_riel",
    "created_by",
    "correlation_id",
]


# --- projections -----------------------------------------------------------------------------------


async def upsert_programme_version(conn: asyncpg.Connection, programme: ProgrammeVersion) -> None:
    await conn.execute(
        "INSERT INTO programme_versions (code, version, status, definition) VALUES ($1, $2, $3, $4)"
        " ON CONFLICT (code, version) DO UPDATE SET status = EXCLUDED.status,"
        " definition = EXCLUDED.definition, published_at = now()",
        programme.code,
        programme.version,
        programme.status,
        programme.model_dump(mode="json"),
    )


async def get_programme_versions(conn: asyncpg.Connection, code: str) -> list[asyncpg.Record]:
    """Every version of a programme, newest first."""
    return await conn.fetch(
        "SELECT version, status, definition FROM programme_versions WHERE code = $1 ORDER BY version DESC",
        code,
    )


DECISION_COLUMNS = [
    "programme_code",
    "household_id",
    "programme_version",
    "eligible",
    "reasons",
    "effective_on",
    "decided_at",
    "household_version",
    "status",
    "village_code",
    "commune_code",
    "district_code",
    "province_code",
    "poverty_level",
    "female_headed",
    "card_status",
    "card_issued_on",
    "card_valid_until",
    "card_number",
    "head_name",
    "facts",
    "snapshot",
    "enrolment",
]


def decision_row(
    decision: EligibilityDecided, household: dict[str, Any], enrolment: dict[str, Any] | None
) -> tuple[Any, ...]:
    """The decisions row (``DECISION_COLUMNS``) of a decision; ``household`` is its snapshot as
    it came (kept as it was decided on)."""
    snapshot = decision.household
    columns = household_facts.projection_columns(snapshot)
    head = next((m for m in snapshot.members if m.member_id == snapshot.head_member_id), None)
    values = {
        **columns,
        "programme_code": decision.programme_code,
        "programme_version": decision.programme_version,
        "eligible": decision.eligible,
        "reasons": decision.reasons,
        "effective_on": decision.effective_on,
        "decided_at": decision.decided_at,
        "household_version": snapshot.version,
        "card_number": snapshot.card.card_number if snapshot.card else None,
        "head_name": head.name_km if head else None,
        "snapshot": household,
        "enrolment": enrolment,
    }
    return tuple(values[c] for c in DECISION_COLUMNS)


_UPSERT_DECISION = (
    f"INSERT INTO decisions ({', '.join(DECISION_COLUMNS)})"
    f" VALUES ({', '.join(f'${i}' for i in range(1, len(DECISION_COLUMNS) + 1))})"
    " ON CONFLICT (programme_code, household_id) DO UPDATE SET "
    + ", ".join(f"{c} = EXCLUDED.{c}" for c in DECISION_COLUMNS[2:])
    + " WHERE decisions.decided_at <= EXCLUDED.decided_at"
)


async def upsert_decision(
    conn: asyncpg.Connection, decision: EligibilityDecided, household: dict[str, Any]
) -> None:
    """Keep the latest decision: one decided earlier and delivered late never overwrites it."""
    enrolment = decision.enrolment.model_dump(mode="json") if decision.enrolment else None
    await conn.execute(_UPSERT_DECISION, *decision_row(decision, household, enrolment))


# What a calculation reads of a decision (``domain.Candidate``): the household's columns, and the
# payee taken out of the enrolment by PostgreSQL rather than decoded whole in Python.
CANDIDATE = ", ".join(
    [
        "eligible",
        "reasons",
        *(
            {"version": "household_version AS version", "facts": "facts::text AS facts"}.get(c, c)
            for c in household_facts.COLUMNS
        ),
        "card_number",
        "head_name",
        "enrolment IS NOT NULL AS enrolled",
        "enrolment->>'payee_name' AS payee_name",
        "enrolment->>'channel' AS channel",
        "enrolment->>'account' AS account",
    ]
)


async def count_decisions(conn: asyncpg.Connection, programme_code: str) -> int:
    return await conn.fetchval("SELECT count(*) FROM decisions WHERE programme_code = $1", programme_code)


async def fetch_decisions(
    conn: asyncpg.Connection, programme_code: str, *, after: UUID | None, limit: int
) -> list[asyncpg.Record]:
    """The next page of decisions in household id order (keyset paging: no OFFSET)."""
    return await conn.fetch(
        f"SELECT {CANDIDATE} FROM decisions"
        " WHERE programme_code = $1 AND ($2::uuid IS NULL OR household_id > $2)"
        " ORDER BY household_id LIMIT $3",
        programme_code,
        after,
        limit,
    )


async def decision_page_bounds(conn: asyncpg.Connection, programme_code: str, size: int) -> list[UUID]:
    """The household id that ends each page of ``size`` decisions but the last, in id order."""
    rows = await conn.fetch(
        "SELECT household_id FROM (SELECT household_id, row_number() OVER (ORDER BY household_id) AS n"
        " FROM decisions WHERE programme_code = $1) AS d WHERE n % $2 = 0 ORDER BY household_id",
        programme_code,
        size,
    )
    return [r["household_id"] for r in rows]


async def fetch_decision_page(
    conn: asyncpg.Connection, programme_code: str, *, after: UUID | None, until: UUID | None
) -> list[asyncpg.Record]:
    """The decisions after ``after`` up to and including ``until`` (None: no bound)."""
    return await conn.fetch(
        f"SELECT {CANDIDATE} FROM decisions WHERE programme_code = $1"
        " AND ($2::uuid IS NULL OR household_id > $2) AND ($3::uuid IS NULL OR household_id <= $3)"
        " ORDER BY household_id",
        programme_code,
        after,
        until,
    )


# --- runs ------------------------------------------------------------------------------------------


async def insert_run(conn: asyncpg.Connection, run: dict[str, Any]) -> None:
    placeholders = ", ".join(f"${i}" for i in range(1, len(RUN_COLUMNS) + 1))
    await conn.execute(
        f"INSERT INTO runs ({', '.join(RUN_COLUMNS)}) VALUES ({placeholders})",
        *[run.get(c) for c in RUN_COLUMNS],
    )


async def get_run(
    conn: asyncpg.Connection, run_id: UUID, *, for_update: bool = False
) -> asyncpg.Record | None:
    lock = " FOR UPDATE" if for_update else ""
    return await conn.fetchrow(f"SELECT * FROM runs WHERE run_id = $1{lock}", run_id)


async def get_calculating_run(conn: asyncpg.Connection, programme_code: str, period: str) -> UUID | None:
    return await conn.fetchval(
        "SELECT run_id FROM runs WHERE programme_code = $1 AND period = $2 AND state = 'DRAFT'",
        programme_code,
        period,
    )


async def list_runs(
    conn: asyncpg.Connection, *, filters: dict[str, Any], before: datetime | None, limit: int
) -> list[asyncpg.Record]:
    clauses, args = [], []
    for column, value in filters.items():
        args.append(value)
        clauses.append(f"{column} = ${len(args)}")
    if before is not None:
        args.append(before)
        clauses.append(f"created_at < ${len(args)}")
    where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
    args.append(limit)
    return await conn.fetch(f"SELECT * FROM runs{where} ORDER BY created_at DESC LIMIT ${len(args)}", *args)


async def runs_in_state(conn: asyncpg.Connection, state: str) -> list[UUID]:
    return [r["run_id"] for r in await conn.fetch("SELECT run_id FROM runs WHERE state = $1", state)]


async def move_run(
    conn: asyncpg.Connection, run_id: UUID, *, from_states: Sequence[str], to: str, **columns: Any
) -> asyncpg.Record | None:
    """Change the run's state if it is in one of ``from_states``; None when it was not."""
    sets = ", ".join(f"{name} = ${i}" for i, name in enumerate(columns, start=4))
    sets = f", {sets}" if sets else ""
    return await conn.fetchrow(
        f"UPDATE runs SET state = $2{sets} WHERE run_id = $1 AND state = ANY($3::text[]) RETURNING *",
        run_id,
        to,
        list(from_states),
        *columns.values(),
    )


async def cancel_lines(conn: asyncpg.Connection, run_id: UUID) -> None:
    await conn.execute(
        "UPDATE payment_lines SET status = 'CANCELLED', status_at = now()"
        " WHERE run_id = $1 AND status = 'CALCULATED'",
        run_id,
    )


async def try_transaction_lock(conn: asyncpg.Connection, name: str) -> bool:
    """A PostgreSQL advisory lock held until the transaction ends; False when someone holds it."""
    return await conn.fetchval("SELECT pg_try_advisory_xact_lock(hashtextextended($1, 0))", name)


# --- payment lines ---------------------------------------------------------------------------------


async def copy_lines(conn: asyncpg.Connection, rows: list[tuple[Any, ...]]) -> None:
    if rows:
        await conn.copy_records_to_table("payment_lines", records=rows, columns=LINE_COLUMNS)


async def copy_left_out(conn: asyncpg.Connection, rows: list[tuple[Any, ...]]) -> None:
    if rows:
        await conn.copy_records_to_table("left_out", records=rows, columns=LEFT_OUT_COLUMNS)


async def lines_of_period(conn: asyncpg.Connection, programme_code: str, period: str) -> list[asyncpg.Record]:
    """Every earlier line of this (programme, period), any status: what a new run must respect."""
    return await conn.fetch(
        "SELECT household_id, component, state FROM line_states WHERE programme_code = $1 AND period = $2",
        programme_code,
        period,
    )


async def periods_paid(conn: asyncpg.Connection, programme_code: str) -> list[str]:
    return [
        r["period"]
        for r in await conn.fetch(
            "SELECT DISTINCT period FROM payment_lines WHERE programme_code = $1", programme_code
        )
    ]


async def households_paid(
    conn: asyncpg.Connection, programme_code: str, periods: list[str], statuses: Sequence[str]
) -> list[UUID]:
    rows = await conn.fetch(
        "SELECT DISTINCT household_id FROM line_states"
        " WHERE programme_code = $1 AND period = ANY($2::text[]) AND state = ANY($3::text[])",
        programme_code,
        periods,
        list(statuses),
    )
    return [r["household_id"] for r in rows]


NIL_UUID = UUID(int=0)  # sorts before every other uuid


async def count_instructed(conn: asyncpg.Connection, run_id: UUID) -> int:
    return await conn.fetchval("SELECT count(*) FROM instructions WHERE run_id = $1", run_id)


# The next lines after the last one instructed (instructions are made in payment id order) become
# PaymentInstructed envelopes in the outbox and rows of instructions, in one statement: PostgreSQL
# builds the JSON (the envelope of instruction.py's contract, checked on a sample of every batch)
# from the rows it reads, so 700,000 lines never travel to Python and back. The outbox ids follow
# the payment ids, so the relay publishes them in that order.
_INSTRUCT = """
WITH next AS (
    SELECT payment_id, household_id, component, amount_riel, payee_name, channel, account
    FROM payment_lines
    WHERE run_id = $1 AND status = 'CALCULATED' AND payment_id > coalesce(
        (SELECT payment_id FROM instructions WHERE run_id = $1 ORDER BY payment_id DESC LIMIT 1), $3)
    ORDER BY payment_id LIMIT $2
), events AS MATERIALIZED (
    SELECT next.*, gen_random_uuid() AS event_id FROM next
), outboxed AS (
    INSERT INTO outbox (event_id, topic, key, event_type, payload)
    SELECT event_id, $4, household_id::text, $5, convert_to(json_build_object(
        'id', event_id, 'source', $6::text, 'type', $5::text, 'specversion', '1.0', 'time', $7::text,
        'subject', household_id::text, 'datacontenttype', 'application/json',
        'correlation_id', $8::text, 'schema_version', $9::int,
        'data', json_build_object(
            'payment_id', payment_id, 'run_id', $1::uuid, 'household_id', household_id,
            'programme_code', $10::text, 'period', $11::text, 'component', component,
            'amount_riel', amount_riel, 'payee_name', payee_name, 'channel', channel,
            'account', account, 'available_from', $12::date, 'claim_until', $13::date)
    )::text, 'UTF8')
    FROM events ORDER BY payment_id
    RETURNING payload
), recorded AS (
    INSERT INTO instructions (payment_id, run_id, instruction_id)
    SELECT payment_id, $1, event_id FROM events
    RETURNING 1
)
SELECT (SELECT count(*) FROM recorded) AS lines, (SELECT payload FROM outboxed LIMIT 1) AS sample
"""


async def instruct_next(
    conn: asyncpg.Connection,
    run: asyncpg.Record,
    *,
    limit: int,
    topic: str,
    event_type: str,
    schema_version: int,
    source: str,
    correlation_id: str,
    at: datetime,
) -> tuple[int, bytes | None]:
    """Instruct the next ``limit`` lines of the run: (lines instructed, one of their payloads)."""
    row = await conn.fetchrow(
        _INSTRUCT,
        run["run_id"],
        limit,
        NIL_UUID,
        topic,
        event_type,
        source,
        at.isoformat(),
        correlation_id,
        schema_version,
        run["programme_code"],
        run["period"],
        run["available_from"],
        run["claim_until"],
    )
    return row["lines"], row["sample"]


async def apply_status(
    conn: asyncpg.Connection, payment_id: UUID, *, status: str, reason: str | None, at: datetime
) -> bool:
    """Record the PSP's final word on an instructed line; False when the line had one already."""
    updated = await conn.fetchval(
        "UPDATE payment_lines SET status = $2, status_reason = $3, status_at = $4"
        " WHERE payment_id = $1 AND status = 'CALCULATED'"
        " AND EXISTS (SELECT 1 FROM instructions WHERE payment_id = $1) RETURNING true",
        payment_id,
        status,
        reason,
        at,
    )
    return bool(updated)


async def apply_statuses(conn: asyncpg.Connection, statuses: list[PaymentStatusReported]) -> set[UUID]:
    """``apply_status`` for a batch of distinct payment ids, in one UPDATE: the ids it applied."""
    if not statuses:
        return set()
    rows = await conn.fetch(
        "UPDATE payment_lines l SET status = u.status, status_reason = u.reason, status_at = u.at"
        " FROM unnest($1::uuid[], $2::text[], $3::text[], $4::timestamptz[])"
        " AS u(payment_id, status, reason, at)"
        " WHERE l.payment_id = u.payment_id AND l.status = 'CALCULATED'"
        " AND EXISTS (SELECT 1 FROM instructions i WHERE i.payment_id = u.payment_id)"
        " RETURNING l.payment_id",
        [s.payment_id for s in statuses],
        [str(s.status) for s in statuses],
        [s.reason for s in statuses],
        [s.reported_at for s in statuses],
    )
    return {r["payment_id"] for r in rows}


async def get_line_statuses(conn: asyncpg.Connection, payment_ids: list[UUID]) -> dict[UUID, str]:
    rows = await conn.fetch(
        "SELECT payment_id, state FROM line_states WHERE payment_id = ANY($1::uuid[])", payment_ids
    )
    return {r["payment_id"]: r["state"] for r in rows}


async def get_line_status(conn: asyncpg.Connection, payment_id: UUID) -> str | None:
    return await conn.fetchval("SELECT state FROM line_states WHERE payment_id = $1", payment_id)


async def runs_fully_reported(conn: asyncpg.Connection) -> list[UUID]:
    """Instructed runs of which no line still waits for the PSP's status."""
    rows = await conn.fetch(
        "SELECT run_id FROM runs r WHERE state = 'INSTRUCTED' AND NOT EXISTS"
        " (SELECT 1 FROM payment_lines l WHERE l.run_id = r.run_id AND l.status = 'CALCULATED')"
    )
    return [r["run_id"] for r in rows]


async def instructed_runs(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT run_id, available_from, claim_until, instructed_at FROM runs WHERE state = 'INSTRUCTED'"
    )


async def mark_unclaimed(conn: asyncpg.Connection, run_id: UUID, *, reason: str, at: datetime) -> int:
    """Instructed lines of the run the PSP has not reported on become UNCLAIMED; how many."""
    done = await conn.execute(
        "UPDATE payment_lines l SET status = 'UNCLAIMED', status_reason = $2, status_at = $3"
        " FROM instructions i WHERE l.run_id = $1 AND l.status = 'CALCULATED'"
        " AND i.payment_id = l.payment_id",
        run_id,
        reason,
        at,
    )
    return int(done.split()[-1])


async def status_counts(conn: asyncpg.Connection, run_id: UUID) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT state AS status, count(*) AS lines, count(DISTINCT household_id) AS households,"
        " sum(amount_riel)::bigint AS amount_riel FROM line_states WHERE run_id = $1 GROUP BY state",
        run_id,
    )


async def list_lines(
    conn: asyncpg.Connection,
    run_id: UUID,
    *,
    filters: dict[str, Any],
    after: UUID | None,
    limit: int,
) -> list[asyncpg.Record]:
    args: list[Any] = [run_id, after, limit]
    clauses = ""
    for column, value in filters.items():
        args.append(value)
        clauses += f" AND {column} = ${len(args)}"
    return await conn.fetch(
        "SELECT * FROM line_states WHERE run_id = $1 AND ($2::uuid IS NULL OR payment_id > $2)"
        f"{clauses} ORDER BY payment_id LIMIT $3",
        *args,
    )


async def list_left_out(
    conn: asyncpg.Connection, run_id: UUID, *, reason: str | None, after: UUID | None, limit: int
) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT household_id, reason, detail FROM left_out WHERE run_id = $1"
        " AND ($2::text IS NULL OR reason = $2) AND ($3::uuid IS NULL OR household_id > $3)"
        " ORDER BY household_id LIMIT $4",
        run_id,
        reason,
        after,
        limit,
    )


async def household_payments(conn: asyncpg.Connection, household_id: UUID) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT * FROM line_states WHERE household_id = $1 ORDER BY period, component, attempt",
        household_id,
    )


async def household_left_out(conn: asyncpg.Connection, household_id: UUID) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT l.run_id, r.programme_code, r.period, l.reason, l.detail FROM left_out l"
        " JOIN runs r USING (run_id) WHERE l.household_id = $1 ORDER BY r.period, r.created_at",
        household_id,
    )


async def reconciliation_rows(conn: asyncpg.Connection, run_id: UUID) -> list[asyncpg.Record]:
    """Expected, paid, failed, unclaimed and pending riel and households by province, location
    category and poverty level."""
    measures = ", ".join(
        f"coalesce(sum(amount_riel) FILTER (WHERE {cond}), 0)::bigint AS {name}_riel,"
        f" count(DISTINCT household_id) FILTER (WHERE {cond}) AS {name}_households"
        for name, cond in RECONCILIATION_MEASURES.items()
    )
    return await conn.fetch(
        f"SELECT province_code, location_category, poverty_level, {measures}"
        " FROM line_states WHERE run_id = $1 AND state <> 'CANCELLED'"
        " GROUP BY province_code, location_category, poverty_level"
        " ORDER BY province_code, location_category, poverty_level",
        run_id,
    )


RECONCILIATION_MEASURES = {
    "expected": "true",
    "paid": "state = 'PAID'",
    "failed": "state = 'FAILED'",
    "unclaimed": "state = 'UNCLAIMED'",
    "pending": "state IN ('CALCULATED', 'INSTRUCTED')",
}


EXPORT_SQL = (
    "SELECT payment_id, household_id, component, amount_riel, payee_name, channel, account,"
    " province_code, commune_code, village_code, explanation, state AS status FROM line_states"
    " WHERE run_id = $1 AND state <> 'CANCELLED' ORDER BY payment_id"
)
