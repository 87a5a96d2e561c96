"""SQL of eligibility: one function per query, the connection first, never a commit.

Bulk paths (loading a batch of households, writing changed decisions) take and return whole
batches: one round trip per batch, never one per household.
"""

from collections.abc import Sequence
from datetime import date
from typing import Any
from uuid import UUID

import asyncpg
from krousar_common.events.households import HouseholdSnapshot
from krousar_common.programmes import ProgrammeVersion

PENDING_CHANNEL = "eligibility_pending"

# --- the household projection ----------------------------------------------------------------------


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


async def household_ids_after(conn: asyncpg.Connection, after: UUID, limit: int) -> list[UUID]:
    rows = await conn.fetch(
        "SELECT household_id FROM households WHERE household_id > $1 ORDER BY household_id LIMIT $2",
        after,
        limit,
    )
    return [r["household_id"] for r in rows]


# --- households waiting for a decision -------------------------------------------------------------


async def queue_households(conn: asyncpg.Connection, household_ids: Sequence[UUID]) -> None:
    if not household_ids:
        return
    await conn.execute("INSERT INTO pending (household_id) SELECT unnest($1::uuid[])", list(household_ids))
    await conn.execute("SELECT pg_notify($1, '')", PENDING_CHANNEL)


async def take_pending(conn: asyncpg.Connection, limit: int) -> list[UUID]:
    """Remove up to ``limit`` queue entries (rows other deciders hold are skipped); distinct ids."""
    rows = await conn.fetch(
        "WITH taken AS (DELETE FROM pending WHERE id IN"
        " (SELECT id FROM pending ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED) RETURNING household_id)"
        " SELECT DISTINCT household_id FROM taken ORDER BY household_id",
        limit,
    )
    return [r["household_id"] for r in rows]


async def pending_count(conn: asyncpg.Connection) -> int:
    return await conn.fetchval("SELECT count(*) FROM pending")


# --- programmes ------------------------------------------------------------------------------------


async def upsert_programme(conn: asyncpg.Connection, programme: ProgrammeVersion) -> bool:
    """Keep the latest version; at the same version only ACTIVE → CLOSED moves forward."""
    applied = await conn.fetchval(
        "INSERT INTO programmes (code, version, kind, status, definition) VALUES ($1, $2, $3, $4, $5)"
        " ON CONFLICT (code) DO UPDATE SET version = EXCLUDED.version, kind = EXCLUDED.kind,"
        " status = EXCLUDED.status, definition = EXCLUDED.definition, received_at = now()"
        " WHERE programmes.version < EXCLUDED.version OR (programmes.version = EXCLUDED.version"
        "  AND programmes.status = 'ACTIVE' AND EXCLUDED.status = 'CLOSED') RETURNING true",
        programme.code,
        programme.version,
        programme.kind,
        programme.status,
        programme.model_dump(mode="json"),
    )
    return bool(applied)


async def load_programmes(
    conn: asyncpg.Connection, codes: Sequence[str] | None = None
) -> list[ProgrammeVersion]:
    rows = await conn.fetch(
        "SELECT definition::text AS definition FROM programmes"
        " WHERE $1::text[] IS NULL OR code = ANY($1) ORDER BY code",
        codes,
    )
    return [ProgrammeVersion.model_validate_json(r["definition"]) for r in rows]


# --- who was paid ----------------------------------------------------------------------------------


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


async def paid_keys(conn: asyncpg.Connection, household_ids: Sequence[UUID]) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT i.household_id, i.programme_code, i.period FROM payment_instructions i"
        " JOIN payment_statuses s USING (payment_id)"
        " WHERE i.household_id = ANY($1::uuid[]) AND s.status = 'PAID'",
        household_ids,
    )


# --- enrolments ------------------------------------------------------------------------------------

ENROLMENT_COLUMNS = [
    "enrolment_id",
    "household_id",
    "status",
    "payee_type",
    "payee_name",
    "payee_member_id",
    "channel",
    "account",
    "identity_document",
    "verified_by",
    "verified_on",
]


async def insert_enrolment(conn: asyncpg.Connection, row: dict[str, Any]) -> None:
    placeholders = ", ".join(f"${i}" for i in range(1, len(ENROLMENT_COLUMNS) + 1))
    await conn.execute(
        f"INSERT INTO enrolments ({', '.join(ENROLMENT_COLUMNS)}) VALUES ({placeholders})",
        *[row[c] for c in ENROLMENT_COLUMNS],
    )


async def get_enrolment(conn: asyncpg.Connection, enrolment_id: UUID) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM enrolments WHERE enrolment_id = $1", enrolment_id)


async def get_active_enrolment(conn: asyncpg.Connection, household_id: UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT * FROM enrolments WHERE household_id = $1 AND status = 'ACTIVE'", household_id
    )


async def end_enrolment(
    conn: asyncpg.Connection,
    enrolment_id: UUID,
    *,
    status: str,
    by: str,
    reason: str,
    replaced_by: UUID | None = None,
) -> None:
    await conn.execute(
        "UPDATE enrolments SET status = $2, ended_at = now(), ended_by = $3, end_reason = $4,"
        " replaced_by = $5 WHERE enrolment_id = $1",
        enrolment_id,
        status,
        by,
        reason,
        replaced_by,
    )


async def active_enrolments(conn: asyncpg.Connection, household_ids: Sequence[UUID]) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT * FROM enrolments WHERE household_id = ANY($1::uuid[]) AND status = 'ACTIVE'",
        household_ids,
    )


async def enrolment_history(conn: asyncpg.Connection, household_id: UUID) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT * FROM enrolments WHERE household_id = $1 ORDER BY created_at, enrolment_id", household_id
    )


# --- PWYC conditions -------------------------------------------------------------------------------

CONDITION_COLUMNS = [
    "event_id",
    "household_id",
    "kind",
    "occurred_on",
    "subject_id",
    "facility_code",
    "babies",
    "accepted",
    "rejection_reason",
    "rejection_detail",
    "amount_riel",
    "recorded_by",
]


async def insert_condition(conn: asyncpg.Connection, row: dict[str, Any]) -> None:
    placeholders = ", ".join(f"${i}" for i in range(1, len(CONDITION_COLUMNS) + 1))
    await conn.execute(
        f"INSERT INTO conditions ({', '.join(CONDITION_COLUMNS)}) VALUES ({placeholders})",
        *[row[c] for c in CONDITION_COLUMNS],
    )


async def conditions_of(conn: asyncpg.Connection, household_ids: Sequence[UUID]) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT * FROM conditions WHERE household_id = ANY($1::uuid[]) ORDER BY occurred_on, recorded_at",
        household_ids,
    )


# --- decisions -------------------------------------------------------------------------------------

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
    conn: asyncpg.Connection, household_ids: Sequence[UUID], codes: Sequence[str]
) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"SELECT {', '.join(DECISION_COLUMNS)} FROM decisions"
        " WHERE household_id = ANY($1::uuid[]) AND programme_code = ANY($2::text[])",
        household_ids,
        codes,
    )


async def write_decisions(conn: asyncpg.Connection, rows: list[tuple[Any, ...]]) -> None:
    """Upsert a batch of decisions: COPY into a temporary table, then one INSERT … ON CONFLICT."""
    if not rows:
        return
    await conn.execute(
        "CREATE TEMP TABLE IF NOT EXISTS decisions_in"
        " (LIKE decisions INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
    )
    await conn.copy_records_to_table("decisions_in", records=rows, columns=DECISION_COLUMNS)
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in DECISION_COLUMNS[2:])
    await conn.execute(
        f"INSERT INTO decisions ({', '.join(DECISION_COLUMNS)}, decided_at, changed_at)"
        f" SELECT {', '.join(DECISION_COLUMNS)}, now(), now() FROM decisions_in"
        f" ON CONFLICT (household_id, programme_code) DO UPDATE SET {updates}, decided_at = now(),"
        " changed_at = CASE WHEN decisions.fingerprint = EXCLUDED.fingerprint"
        "  THEN decisions.changed_at ELSE now() END"
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


async def beneficiaries(
    conn: asyncpg.Connection,
    code: str,
    *,
    province: str | None,
    commune: str | None,
    after: UUID,
    limit: int,
) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT d.household_id, d.payment_key, d.amount_riel, d.programme_version, h.province_code,"
        " h.district_code, h.commune_code, h.village_code, h.poverty_level, h.female_headed,"
        " jsonb_array_length(h.snapshot->'members') AS members"
        " FROM decisions d JOIN households h USING (household_id)"
        " WHERE d.programme_code = $1 AND d.eligible AND d.household_id > $2"
        " AND ($3::text IS NULL OR h.province_code = $3) AND ($4::text IS NULL OR h.commune_code = $4)"
        " ORDER BY d.household_id LIMIT $5",
        code,
        after,
        province,
        commune,
        limit,
    )


async def household_ids_in_area(
    conn: asyncpg.Connection, *, province: str | None, commune: str | None, after: UUID, limit: int
) -> list[UUID]:
    rows = await conn.fetch(
        "SELECT household_id FROM households WHERE household_id > $1"
        " AND ($2::text IS NULL OR province_code = $2) AND ($3::text IS NULL OR commune_code = $3)"
        " ORDER BY household_id LIMIT $4",
        after,
        province,
        commune,
        limit,
    )
    return [r["household_id"] for r in rows]


async def snapshots(conn: asyncpg.Connection, household_ids: Sequence[UUID]) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT household_id, snapshot::text AS snapshot FROM households"
        " WHERE household_id = ANY($1::uuid[]) ORDER BY household_id",
        household_ids,
    )


# The funnel of DOMAIN.md §6 on the payment's first day ($2): registered (active households) →
# poor with a card in force → eligible (every rule met but enrolment) → enrolled (payable).
COVERAGE_SQL = """
SELECT h.province_code, h.commune_code, h.female_headed,
       count(*) AS registered,
       count(*) FILTER (WHERE h.poverty_level IN ('POOR_1', 'POOR_2')
                          AND h.card_status IN ('ACTIVE', 'EXPIRED')
                          AND h.card_issued_on <= $2 AND $2 <= h.card_valid_until) AS poor,
       count(*) FILTER (WHERE d.eligible OR d.reasons = ARRAY['NOT_ENROLLED']) AS eligible,
       count(*) FILTER (WHERE d.eligible) AS enrolled,
       coalesce(sum(d.amount_riel) FILTER (WHERE d.eligible), 0) AS amount_riel
FROM households h
LEFT JOIN decisions d ON d.household_id = h.household_id AND d.programme_code = $1
WHERE h.status = 'ACTIVE' AND ($3::text IS NULL OR h.province_code = $3)
GROUP BY 1, 2, 3
"""


async def coverage(
    conn: asyncpg.Connection, code: str, day: date, province: str | None
) -> list[asyncpg.Record]:
    return await conn.fetch(COVERAGE_SQL, code, day, province)


async def payment_keys_of(conn: asyncpg.Connection, code: str) -> list[str]:
    rows = await conn.fetch(
        "SELECT DISTINCT payment_key FROM decisions WHERE programme_code = $1 AND payment_key IS NOT NULL",
        code,
    )
    return [r["payment_key"] for r in rows]


# --- the clock and full evaluations ----------------------------------------------------------------


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
    await conn.execute(
        "UPDATE evaluation_runs SET households = $2, decisions_changed = $3 WHERE run_id = ANY($1::uuid[])",
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


async def get_run(conn: asyncpg.Connection, run_id: UUID) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM evaluation_runs WHERE run_id = $1", run_id)
