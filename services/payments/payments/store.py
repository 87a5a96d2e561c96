"""SQL of the payments service: one function per query, the connection first, never a commit."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg
from krousar_common import copy_binary, db, household_facts
from krousar_common.events.eligibility import EligibilityDecided, ProgrammeDecision
from krousar_common.events.households import HouseholdSnapshot
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
    "arithmetic_id",
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
ARITHMETIC_COLUMNS = ["run_id", "arithmetic_id", "terms", "explanation"]
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
    "enrolment",
]


_code, _text, _day = copy_binary.code, copy_binary.optional_text, copy_binary.nullable(copy_binary.day)
# DECISION_COLUMNS in PostgreSQL's binary COPY format, in their order.
DECISION_TYPES: tuple[copy_binary.Encoder, ...] = (
    _code,  # programme_code
    copy_binary.uuid,  # household_id
    copy_binary.int4,  # programme_version
    copy_binary.boolean,  # eligible
    copy_binary.text_array,  # reasons
    copy_binary.day,  # effective_on
    copy_binary.timestamptz,  # decided_at
    copy_binary.int4,  # household_version
    *(_code,) * 6,  # status, village, commune, district, province, poverty level
    copy_binary.boolean,  # female_headed
    _code,  # card_status
    _day,  # card_issued_on
    _day,  # card_valid_until
    _text,  # card_number
    _text,  # head_name
    copy_binary.json,  # facts
    copy_binary.nullable(copy_binary.jsonb),  # enrolment
)

DECIDED_HOUSEHOLD_COLUMNS = ["household_id", "version", "snapshot"]


def household_columns(snapshot: HouseholdSnapshot) -> dict[str, Any]:
    """The columns of a decision (``DECISION_COLUMNS``) that come from its household: the same for
    each of the household's programmes, so a batch makes them once per household version."""
    head = next((m for m in snapshot.members if m.member_id == snapshot.head_member_id), None)
    return {
        **household_facts.projection_columns(snapshot),
        "household_version": snapshot.version,
        "card_number": snapshot.card.card_number if snapshot.card else None,
        "head_name": head.name_km if head else None,
    }


def decision_row(
    event: EligibilityDecided,
    decision: ProgrammeDecision,
    household: dict[str, Any],
    enrolment: dict[str, Any] | None,
) -> tuple[Any, ...]:
    """The decisions row (``DECISION_COLUMNS``) of one programme's decision in ``event``,
    ``household`` its household's columns (``household_columns``)."""
    values = {
        **household,
        "programme_code": decision.programme_code,
        "programme_version": decision.programme_version,
        "eligible": decision.eligible,
        "reasons": decision.reasons,
        "effective_on": event.effective_on,
        "decided_at": event.decided_at,
        "enrolment": enrolment,
    }
    return tuple(values[c] for c in DECISION_COLUMNS)


_UPSERT_DECISIONS = (
    "INSERT INTO decisions ({columns}) SELECT {columns} FROM {staging}"
    " ON CONFLICT (programme_code, household_id) DO UPDATE SET "
    + ", ".join(f"{c} = EXCLUDED.{c}" for c in DECISION_COLUMNS[2:])
    + " WHERE decisions.decided_at <= EXCLUDED.decided_at"
)


async def upsert_decision(
    conn: asyncpg.Connection, event: EligibilityDecided, household: dict[str, Any]
) -> None:
    """Keep each programme's latest decision: one decided earlier and delivered late never
    overwrites it. ``household`` is the event's snapshot as it came, kept once per household
    version."""
    await upsert_decisions(conn, [(event, household)])


@dataclass
class DecisionBatch:
    """What a batch of decision events changes: each household version it names (its snapshot as
    the event carried it) and the rows (``DECISION_COLUMNS``) of the latest decisions."""

    households: dict[tuple[UUID, int], Any]
    rows: list[tuple[Any, ...]]


def plan_decisions(events: Sequence[tuple[EligibilityDecided, Any]]) -> DecisionBatch:
    """The batch (in offset order) as ``upsert_decisions`` writes it: the latest decision of each
    programme and household (a later one decided at the same time wins, as one by one). No I/O:
    worker processes run it too (``events.decision_batch``)."""
    latest: dict[tuple[str, UUID], tuple[EligibilityDecided, ProgrammeDecision]] = {}
    households: dict[tuple[UUID, int], Any] = {}
    for event, household in events:
        for decision in event.decisions:
            key = (decision.programme_code, event.household_id)
            kept = latest.get(key)
            if kept is None or kept[0].decided_at <= event.decided_at:
                latest[key] = (event, decision)
        households.setdefault((event.household_id, event.household.version), household)
    columns: dict[tuple[UUID, int], dict[str, Any]] = {}
    enrolments: dict[int, dict[str, Any] | None] = {}  # by event (its id)
    rows = []
    for event, decision in latest.values():
        key = (event.household_id, event.household.version)
        if key not in columns:
            columns[key] = household_columns(event.household)
        if id(event) not in enrolments:
            enrolments[id(event)] = event.enrolment.model_dump(mode="json") if event.enrolment else None
        rows.append(decision_row(event, decision, columns[key], enrolments[id(event)]))
    return DecisionBatch(households, rows)


async def upsert_decisions(
    conn: asyncpg.Connection, events: Sequence[tuple[EligibilityDecided, dict[str, Any]]]
) -> None:
    """``upsert_decision`` for a batch in offset order: its latest decisions COPied and upserted at
    once, and each household version not kept before."""
    batch = plan_decisions(events)
    await write_decisions(conn, batch.households, batch.rows)


async def write_decisions(
    conn: asyncpg.Connection, households: dict[tuple[UUID, int], Any], rows: list[tuple[Any, ...]] | bytes
) -> None:
    """Keep the household versions not kept before, and upsert the decision rows (or the same in
    binary COPY format, ``DECISION_TYPES``): a decision made earlier never overwrites a later one."""
    if not rows:
        return
    await _keep_households(conn, households)
    staging = await db.copy_to_staging(conn, "decisions", DECISION_COLUMNS, rows)
    await conn.execute(_UPSERT_DECISIONS.format(columns=", ".join(DECISION_COLUMNS), staging=staging))


async def _keep_households(conn: asyncpg.Connection, households: dict[tuple[UUID, int], Any]) -> None:
    """Keep each household version (id, version) → snapshot not kept before. Most are, when an
    evaluation decides unchanged households again: those are looked up by key and not copied (a
    national evaluation would otherwise COPY 700,000 snapshots of 2 kB only to find each kept)."""
    kept = await conn.fetch(
        "SELECT k.household_id, k.version FROM unnest($1::uuid[], $2::int[]) AS k(household_id, version),"
        " LATERAL (SELECT FROM decided_households h"
        "  WHERE h.household_id = k.household_id AND h.version = k.version OFFSET 0) AS found",
        [household_id for household_id, _ in households],
        [version for _, version in households],
    )
    new = households.keys() - {(r["household_id"], r["version"]) for r in kept}
    if not new:
        return
    staging = await db.copy_to_staging(
        conn, "decided_households", DECIDED_HOUSEHOLD_COLUMNS, [(*key, households[key]) for key in new]
    )
    await conn.execute(f"INSERT INTO decided_households SELECT * FROM {staging} ON CONFLICT DO NOTHING")


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


async def try_transaction_lock(conn: asyncpg.Connection, name: str) -> bool:
    """A PostgreSQL advisory lock held until the transaction ends; False when someone holds it."""
    return await conn.fetchval("SELECT pg_try_advisory_xact_lock(hashtextextended($1, 0))", name)


# --- payment lines ---------------------------------------------------------------------------------


def _tally_move(lines: str, *, run: str, old: str, new: str) -> str:
    """A CTE moving the rows of ``lines`` (with province_code, amount_riel) from state ``old`` to
    ``new`` in line_tallies (``run``, ``old``, ``new``: SQL expressions)."""
    return f"""tallied AS (
    INSERT INTO line_tallies (run_id, province_code, state, lines, amount_riel)
    SELECT {run}, province_code, move.state, sum(move.sign), sum(move.sign * amount_riel)
    FROM {lines}, LATERAL (VALUES ({old}, -1), ({new}, 1)) AS move(state, sign)
    GROUP BY 1, 2, 3
)"""


_CANCEL_LINES = f"""
WITH cancelled AS (
    UPDATE payment_lines SET status = 'CANCELLED' WHERE run_id = $1 AND status = 'CALCULATED'
    RETURNING province_code, amount_riel
), {_tally_move("cancelled", run="$1::uuid", old="'CALCULATED'", new="'CANCELLED'")}
SELECT count(*) FROM cancelled
"""


async def cancel_lines(conn: asyncpg.Connection, run_id: UUID) -> None:
    await conn.execute(_CANCEL_LINES, run_id)


async def copy_lines(conn: asyncpg.Connection, rows: list[tuple[Any, ...]]) -> None:
    if rows:
        await conn.copy_records_to_table("payment_lines", records=rows, columns=LINE_COLUMNS)


async def add_arithmetics(conn: asyncpg.Connection, rows: list[tuple[Any, ...]]) -> None:
    """Arithmetics of the run's lines (run_arithmetics; terms as JSON text), before the lines that
    name them; those the run already has are kept."""
    if rows:
        await conn.execute(
            "INSERT INTO run_arithmetics (run_id, arithmetic_id, terms, explanation)"
            " SELECT run_id, arithmetic_id, terms::jsonb, explanation"
            " FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[])"
            " AS a(run_id, arithmetic_id, terms, explanation)"
            " ON CONFLICT DO NOTHING",
            *zip(*rows, strict=True),
        )


async def copy_left_out(conn: asyncpg.Connection, rows: list[tuple[Any, ...]]) -> None:
    if rows:
        await conn.copy_records_to_table("left_out", records=rows, columns=LEFT_OUT_COLUMNS)


# A (programme, period)'s lines are read run by run (runs_by_programme, then payment_lines_by_run).


async def lines_of_period(conn: asyncpg.Connection, programme_code: str, period: str) -> list[asyncpg.Record]:
    """Every earlier line of this (programme, period), any status: what a new run must respect."""
    return await conn.fetch(
        "SELECT l.household_id, l.component, l.state FROM runs r JOIN line_states l USING (run_id)"
        " WHERE r.programme_code = $1 AND r.period = $2",
        programme_code,
        period,
    )


async def periods_paid(conn: asyncpg.Connection, programme_code: str) -> list[str]:
    """The periods of the programme that have lines (a run writes its lines entirely or not at all)."""
    return [
        r["period"]
        for r in await conn.fetch(
            "SELECT DISTINCT period FROM runs WHERE programme_code = $1 AND lines > 0", programme_code
        )
    ]


async def households_paid(
    conn: asyncpg.Connection, programme_code: str, periods: list[str], statuses: Sequence[str]
) -> list[UUID]:
    rows = await conn.fetch(
        "SELECT DISTINCT l.household_id FROM runs r JOIN line_states l USING (run_id)"
        " WHERE r.programme_code = $1 AND r.period = ANY($2::text[]) AND l.state = ANY($3::text[])",
        programme_code,
        periods,
        list(statuses),
    )
    return [r["household_id"] for r in rows]


NIL_UUID = UUID(int=0)  # sorts before every other uuid


async def count_instructed(conn: asyncpg.Connection, run_id: UUID) -> int:
    return await conn.fetchval("SELECT count(*) FROM instructions WHERE run_id = $1", run_id)


# The next lines after the last one instructed (instructions are made in payment id order) are
# instructed by moving the run's mark over them (instructed_through); their events are built
# from the lines when the relay publishes them (instructions_to_publish).
_INSTRUCT = f"""
WITH next AS (
    SELECT payment_id, province_code, amount_riel FROM payment_lines
    WHERE run_id = $1 AND payment_id > coalesce((SELECT instructed_through FROM runs WHERE run_id = $1), $3)
    ORDER BY payment_id LIMIT $2
), marked AS (
    UPDATE runs SET instructed_through = (SELECT payment_id FROM next ORDER BY payment_id DESC LIMIT 1)
    WHERE run_id = $1 AND EXISTS (SELECT FROM next)
), {_tally_move("next", run="$1::uuid", old="'CALCULATED'", new="'INSTRUCTED'")}
SELECT count(*) FROM next
"""


async def instruct_next(conn: asyncpg.Connection, run_id: UUID, *, limit: int) -> int:
    """Instruct the next ``limit`` lines of the run; how many."""
    return await conn.fetchval(_INSTRUCT, run_id, limit, NIL_UUID)


async def run_to_publish(conn: asyncpg.Connection, run_id: UUID | None = None) -> asyncpg.Record | None:
    """The run approved first of those with instructed lines the relay has not published (or the
    run ``run_id`` while it has some)."""
    return await conn.fetchrow(
        "SELECT run_id, programme_code, period, available_from, claim_until, approved_at, published_through"
        " FROM runs WHERE instructed_through IS NOT NULL AND instructed_through IS DISTINCT FROM"
        " published_through AND ($1::uuid IS NULL OR run_id = $1) ORDER BY approved_at LIMIT 1",
        run_id,
    )


# The PaymentInstructed events of a run's next instructed lines (instruction.py's contract):
# PostgreSQL writes each envelope around the parts every line of the run shares ($4, $5:
# outbox.json_members), so 700,000 lines never travel to Python as rows.
_INSTRUCTIONS_TO_PUBLISH = """
SELECT payment_id, run_id, $6::text AS topic, household_id::text AS key, $7::text AS event_type, convert_to(
    '{"id":"' || instruction_id(payment_id) || '","subject":"' || household_id || '",' || $4
    || ',"data":{"payment_id":"' || payment_id || '","household_id":"' || household_id
    || '","component":' || to_json(component) || ',"amount_riel":' || amount_riel
    || ',"payee_name":' || to_json(payee_name) || ',"channel":' || to_json(channel)
    || ',"account":' || coalesce(to_json(account)::text, 'null') || ',' || $5 || '}}', 'UTF8') AS payload
FROM payment_lines
WHERE run_id = $1 AND payment_id > $2
    AND payment_id <= (SELECT instructed_through FROM runs WHERE run_id = $1)
ORDER BY payment_id LIMIT $3
"""


async def instructions_to_publish(
    conn: asyncpg.Connection,
    run_id: UUID,
    *,
    after: UUID | None,
    limit: int,
    topic: str,
    event_type: str,
    envelope: str,
    of_run: str,
) -> list[asyncpg.Record]:
    """The events of the run's next instructed lines after payment ``after``, in payment id order
    (``envelope`` and ``of_run``: the members every event of the run shares)."""
    return await conn.fetch(
        _INSTRUCTIONS_TO_PUBLISH, run_id, after or NIL_UUID, limit, envelope, of_run, topic, event_type
    )


async def mark_published(conn: asyncpg.Connection, run_id: UUID, through: UUID) -> None:
    await conn.execute("UPDATE runs SET published_through = $2 WHERE run_id = $1", run_id, through)


async def instructions_pending(conn: asyncpg.Connection) -> bool:
    """Whether a run is being instructed or has instructions not published yet."""
    return await conn.fetchval(
        "SELECT EXISTS (SELECT FROM runs WHERE state = 'APPROVED'"
        " OR instructed_through IS DISTINCT FROM published_through)"
    )


async def instructions_unpublished(conn: asyncpg.Connection) -> tuple[int, datetime | None]:
    """(instructed lines not yet published, approval of the oldest run that has some)."""
    row = await conn.fetchrow(
        "SELECT count(l.*) AS lines, min(r.approved_at) AS oldest FROM runs r JOIN payment_lines l"
        " ON l.run_id = r.run_id AND l.payment_id > coalesce(r.published_through, $1)"
        " AND l.payment_id <= r.instructed_through"
        " WHERE r.instructed_through IS DISTINCT FROM r.published_through",
        NIL_UUID,
    )
    return row["lines"], row["oldest"]


# The PSP's final words (rows of ``reported``: payment_id, status, reason, at) appended to
# line_outcomes, the first one per line only; a FAILED line gives up its never-twice slot; the
# tallies move the lines from INSTRUCTED to their status. Returns the payment ids recorded now.
# A batch's lines (and instructions, in apply_statuses) are looked up by key: LATERAL ... OFFSET 0
# and = ANY keep the planner from a hash join, which reads every line of every run, each batch.
_RECORD_OUTCOMES = f"""
, applied AS (
    INSERT INTO line_outcomes (payment_id, status, reason, at)
    SELECT payment_id, status, reason, at FROM reported
    ON CONFLICT (payment_id) DO NOTHING
    RETURNING payment_id, status
), settled AS MATERIALIZED (
    SELECT l.payment_id, l.run_id, l.province_code, l.amount_riel, a.status
    FROM applied a, LATERAL (SELECT * FROM payment_lines l WHERE l.payment_id = a.payment_id OFFSET 0) l
), freed AS (
    UPDATE payment_lines SET status = 'FAILED'
    WHERE payment_id = ANY(ARRAY(SELECT payment_id FROM settled WHERE status = 'FAILED'))
), {_tally_move("settled", run="run_id", old="'INSTRUCTED'", new="status")}
SELECT payment_id FROM settled
"""


async def apply_statuses(conn: asyncpg.Connection, statuses: list[PaymentStatusReported]) -> set[UUID]:
    """Record the PSP's final word on instructed lines (distinct payment ids), one statement for a
    batch: the ids it applied (the others had a word already, or are not instructed lines)."""
    if not statuses:
        return set()
    rows = await conn.fetch(
        "WITH reported AS (SELECT u.* FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[],"
        " $5::timestamptz[]) AS u(payment_id, run_id, status, reason, at)"
        " JOIN LATERAL (SELECT FROM instructions i WHERE i.run_id = u.run_id AND i.payment_id = u.payment_id"
        " OFFSET 0) AS instructed ON true)" + _RECORD_OUTCOMES,
        [s.payment_id for s in statuses],
        [s.run_id for s in statuses],
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
        "SELECT run_id FROM runs r WHERE state = 'INSTRUCTED' AND (SELECT coalesce(sum(lines), 0)"
        " FROM line_tallies t WHERE t.run_id = r.run_id AND t.state IN ('CALCULATED', 'INSTRUCTED')) = 0"
    )
    return [r["run_id"] for r in rows]


async def instructed_runs(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT run_id, available_from, claim_until, instructed_at FROM runs WHERE state = 'INSTRUCTED'"
    )


async def mark_unclaimed(conn: asyncpg.Connection, run_id: UUID, *, reason: str, at: datetime) -> int:
    """Instructed lines of the run the PSP has not reported on become UNCLAIMED; how many."""
    rows = await conn.fetch(
        "WITH reported AS (SELECT i.payment_id, 'UNCLAIMED' AS status, $2::text AS reason,"
        " $3::timestamptz AS at FROM instructions i WHERE i.run_id = $1"
        " AND NOT EXISTS (SELECT 1 FROM line_outcomes o WHERE o.payment_id = i.payment_id))"
        + _RECORD_OUTCOMES,
        run_id,
        reason,
        at,
    )
    return len(rows)


# --- line tallies ----------------------------------------------------------------------------------


async def add_tallies(
    conn: asyncpg.Connection, run_id: UUID, state: str, by_province: dict[str, tuple[int, int]]
) -> None:
    """Lines newly in ``state``: {province: (lines, riel)}."""
    await conn.executemany(
        "INSERT INTO line_tallies (run_id, province_code, state, lines, amount_riel)"
        " VALUES ($1, $2, $3, $4, $5)",
        [(run_id, province, state, lines, riel) for province, (lines, riel) in by_province.items()],
    )


async def tallied_states(conn: asyncpg.Connection, run_id: UUID) -> list[asyncpg.Record]:
    """The run's lines and riel by state (as ``status``), from its tallies."""
    return await conn.fetch(
        "SELECT state AS status, sum(lines)::bigint AS lines, sum(amount_riel)::bigint AS amount_riel"
        " FROM line_tallies WHERE run_id = $1 GROUP BY state HAVING sum(lines) <> 0",
        run_id,
    )


async def compact_tallies(conn: asyncpg.Connection, run_id: UUID) -> None:
    """One row per (province, state) for a run whose lines no longer move."""
    await conn.execute(
        "WITH gone AS (DELETE FROM line_tallies WHERE run_id = $1 RETURNING *)"
        " INSERT INTO line_tallies (run_id, province_code, state, lines, amount_riel)"
        " SELECT run_id, province_code, state, sum(lines), sum(amount_riel) FROM gone"
        " GROUP BY 1, 2, 3 HAVING sum(lines) <> 0",
        run_id,
    )


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
