"""Decisions in force, beneficiaries and the coverage funnel."""

from collections.abc import Sequence
from datetime import date
from typing import Any
from uuid import UUID

import asyncpg
from krousar_common import db

from eligibility.store.households import Span, households_in

# --- decisions ---------------------------------------------------------------------------------------

DECISION_COLUMNS = [
    "household_id",
    "programme_code",
    "programme_version",
    "payment_key",
    "eligible",
    "reasons",
    "amount_riel",
    "effective_on",
    "fingerprint",
]


async def current_decisions(
    conn: asyncpg.Connection, household_ids: Sequence[UUID], codes: Sequence[str], *, span: Span | None = None
) -> list[asyncpg.Record]:
    """What tells whether a decision changed, of those in force: (household_id, programme_code,
    payment_key, amount_riel, fingerprint); the fingerprint holds eligible, reasons and version.
    ``span``: see ``households_in``."""
    where, args = households_in("household_id", household_ids, span)
    return await conn.fetch(
        "SELECT household_id, programme_code, payment_key, amount_riel, fingerprint FROM decisions"
        f" WHERE {where} AND programme_code = ANY(${len(args) + 1}::text[])",
        *args,
        codes,
    )


async def write_decisions(conn: asyncpg.Connection, rows: list[tuple[Any, ...]]) -> None:
    """Upsert a batch of decisions (``DECISION_COLUMNS``): COPY into a temporary table, then one
    INSERT … ON CONFLICT."""
    if not rows:
        return
    staging = await db.copy_to_staging(conn, "decisions", DECISION_COLUMNS, rows)
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in DECISION_COLUMNS[2:])
    await conn.execute(
        f"INSERT INTO decisions ({', '.join(DECISION_COLUMNS)}, decided_at, changed_at)"
        f" SELECT {', '.join(DECISION_COLUMNS)}, now(), now() FROM {staging}"
        f" ON CONFLICT (household_id, programme_code) DO UPDATE SET {updates}, decided_at = now(),"
        " changed_at = CASE WHEN decisions.fingerprint = EXCLUDED.fingerprint"
        "  THEN decisions.changed_at ELSE now() END"
    )


async def move_decisions(
    conn: asyncpg.Connection, code: str, key: str | None, day: date, household_ids: Sequence[UUID]
) -> None:
    """Decisions that move to their programme's payment ``key`` (decided on ``day``) with nothing
    else changed: cheaper than rewriting them, and most decisions when a month begins."""
    await conn.execute(
        "UPDATE decisions SET payment_key = $3, effective_on = $4, decided_at = now()"
        " WHERE programme_code = $1 AND household_id = ANY($2::uuid[])",
        code,
        household_ids,
        key,
        day,
    )


async def decisions_of_household(conn: asyncpg.Connection, household_id: UUID) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT * FROM decisions WHERE household_id = $1 ORDER BY programme_code", household_id
    )


async def decisions_table(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT household_id, programme_code, programme_version, eligible, reasons, payment_key"
        " FROM decisions ORDER BY household_id, programme_code"
    )


def _codes(within: frozenset[str] | None) -> list[str] | None:
    return None if within is None else sorted(within)


async def beneficiaries(
    conn: asyncpg.Connection,
    code: str,
    *,
    province: str | None,
    commune: str | None,
    within: frozenset[str] | None,
    after: UUID,
    limit: int,
) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT d.household_id, d.payment_key, d.amount_riel, d.programme_version, h.province_code,"
        " h.district_code, h.commune_code, h.village_code, h.poverty_level, h.female_headed,"
        " json_array_length(h.snapshot->'members') AS members"
        " FROM decisions d JOIN households h USING (household_id)"
        " WHERE d.programme_code = $1 AND d.eligible AND d.household_id > $2"
        " AND ($3::text IS NULL OR h.province_code = $3) AND ($4::text IS NULL OR h.commune_code = $4)"
        " AND ($6::text[] IS NULL OR h.commune_code = ANY($6) OR h.province_code = ANY($6))"
        " ORDER BY d.household_id LIMIT $5",
        code,
        after,
        province,
        commune,
        limit,
        _codes(within),
    )


async def household_ids_in_area(
    conn: asyncpg.Connection,
    *,
    province: str | None,
    commune: str | None,
    within: frozenset[str] | None,
    after: UUID,
    limit: int,
) -> list[UUID]:
    rows = await conn.fetch(
        "SELECT household_id FROM households WHERE household_id > $1"
        " AND ($2::text IS NULL OR province_code = $2) AND ($3::text IS NULL OR commune_code = $3)"
        " AND ($5::text[] IS NULL OR commune_code = ANY($5) OR province_code = ANY($5))"
        " ORDER BY household_id LIMIT $4",
        after,
        province,
        commune,
        limit,
        _codes(within),
    )
    return [r["household_id"] for r in rows]


# The funnel of DOMAIN.md §6 for one payment ($4, its first day $2): registered (active households) →
# poor with a card in force → eligible (every rule met but enrolment) → enrolled (payable) →
# instructed → paid, failed or unclaimed (what payments.instructions.v1 and payments.status.v1 said).
# A household counts once: paid if any of its lines was paid, else unclaimed, else failed; a failed
# line paid by a later run counts as paid.
COVERAGE_SQL = """
WITH instructed AS (
    SELECT i.household_id,
           coalesce(bool_or(s.status = 'PAID'), false) AS paid,
           coalesce(bool_or(s.status = 'UNCLAIMED'), false) AS unclaimed,
           coalesce(bool_or(s.status = 'FAILED'), false) AS failed
    FROM payment_instructions i LEFT JOIN payment_statuses s USING (payment_id)
    WHERE i.programme_code = $1 AND i.period = $4
    GROUP BY 1
)
SELECT h.province_code, h.commune_code, h.female_headed, coalesce(h.poverty_level, 'NONE') AS poverty_level,
       count(*) AS registered,
       count(*) FILTER (WHERE h.poverty_level IN ('POOR_1', 'POOR_2')
                          AND h.card_status IN ('ACTIVE', 'EXPIRED')
                          AND h.card_issued_on <= $2 AND $2 <= h.card_valid_until) AS poor,
       count(*) FILTER (WHERE d.eligible OR d.reasons = ARRAY['NOT_ENROLLED']) AS eligible,
       count(*) FILTER (WHERE d.eligible) AS enrolled,
       count(p.household_id) AS instructed,
       count(*) FILTER (WHERE p.paid) AS paid,
       count(*) FILTER (WHERE p.unclaimed AND NOT p.paid) AS unclaimed,
       count(*) FILTER (WHERE p.failed AND NOT p.paid AND NOT p.unclaimed) AS failed,
       coalesce(sum(d.amount_riel) FILTER (WHERE d.eligible), 0) AS amount_riel
FROM households h
LEFT JOIN decisions d ON d.household_id = h.household_id AND d.programme_code = $1
LEFT JOIN instructed p ON p.household_id = h.household_id
WHERE h.status = 'ACTIVE' AND ($3::text IS NULL OR h.province_code = $3)
GROUP BY 1, 2, 3, 4
"""


async def coverage(
    conn: asyncpg.Connection, code: str, key: str | None, day: date, province: str | None
) -> list[asyncpg.Record]:
    """The funnel of payment ``key`` (None: the programme is not running) on ``day``, by province,
    commune, sex of the head and poverty level (``NONE``: not assessed)."""
    return await conn.fetch(COVERAGE_SQL, code, day, province, key)


async def payment_keys_of(conn: asyncpg.Connection, code: str) -> list[str]:
    rows = await conn.fetch(
        "SELECT DISTINCT payment_key FROM decisions WHERE programme_code = $1 AND payment_key IS NOT NULL",
        code,
    )
    return [r["payment_key"] for r in rows]
