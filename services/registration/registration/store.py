"""SQL of the registry: one function per query, the connection first, never a commit."""

import operator
from dataclasses import dataclass
from datetime import date
from typing import Any
from uuid import UUID

import asyncpg

MEMBER_COLUMNS = [
    "member_id",
    "household_id",
    "name_km",
    "name_latin",
    "sex",
    "date_of_birth",
    "dob_estimated",
    "relationship",
    "national_id",
    "has_disability",
    "disability_card_no",
    "lives_with_hiv",
    "is_pregnant",
    "expected_delivery_date",
    "in_school",
    "joined_on",
    "joined_reason",
    "left_on",
    "left_reason",
    "active",
]
HOUSEHOLD_COLUMNS = [
    "household_id",
    "village_code",
    "commune_code",
    "district_code",
    "province_code",
    "interviewed_on",
    "identification_mode",
    "round_no",
    "questionnaire",
    "possible_duplicate",
    "head_member_id",
    "poverty_level",
    "registered_by",
    "updated_by",
    "status",
    "version",
]
ASSESSMENT_COLUMNS = [
    "assessment_id",
    "household_id",
    "assessed_on",
    "scoring_model",
    "score",
    "model_level",
    "final_level",
    "items",
    "answers",
    "adjustment",
    "adjustment_reason",
    "created_by",
]
AUDIT_COLUMNS = ["household_id", "action", "actor", "version", "details"]
CARD_COLUMNS = ["card_number", "household_id", "assessment_id", "status", "issued_on", "valid_until"]
CARD_TYPES = ["text", "uuid", "uuid", "text", "date", "date"]


OUTBOX_COLUMNS = ["event_id", "topic", "key", "event_type", "payload"]


def _placeholders(n: int, first: int = 1) -> str:
    return ", ".join(f"${i}" for i in range(first, first + n))


async def insert_row(conn: asyncpg.Connection, table: str, columns: list[str], row: dict[str, Any]) -> None:
    await conn.execute(
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({_placeholders(len(columns))})",
        *[row.get(c) for c in columns],
    )


async def insert_members(conn: asyncpg.Connection, members: list[dict[str, Any]]) -> None:
    await conn.executemany(
        f"INSERT INTO members ({', '.join(MEMBER_COLUMNS)}) VALUES ({_placeholders(len(MEMBER_COLUMNS))})",
        [[m.get(c) for c in MEMBER_COLUMNS] for m in members],
    )


async def copy_rows(
    conn: asyncpg.Connection, table: str, columns: list[str], rows: list[dict[str, Any]]
) -> None:
    """COPY rows that hold every one of ``columns``."""
    values = operator.itemgetter(*columns)
    await conn.copy_records_to_table(table, records=map(values, rows), columns=columns)


async def households_holding_national_ids(
    conn: asyncpg.Connection, national_ids: list[str]
) -> dict[str, UUID]:
    rows = await conn.fetch(
        "SELECT national_id, household_id FROM members WHERE active AND national_id = ANY($1::text[])",
        national_ids,
    )
    return {r["national_id"]: r["household_id"] for r in rows}


@dataclass(frozen=True)
class RegistrationFacts:
    held: dict[str, UUID]  # national ID -> the active household that holds it
    possible_duplicate: bool
    card_seq: int | None  # reserved when a card was asked for and no national ID is held
    reclassified: list[dict[str, Any]]  # the village's classifications, oldest first


REGISTRATION_FACTS_SQL = """
WITH held AS (
    SELECT national_id, household_id FROM members WHERE active AND national_id = ANY($1::text[])
), card AS (
    INSERT INTO village_card_sequences AS s (village_code, last_seq)
    SELECT $4, 1 WHERE $5 AND NOT EXISTS (SELECT FROM held)
    ON CONFLICT (village_code) DO UPDATE SET last_seq = s.last_seq + 1
    RETURNING last_seq
)
SELECT
    ARRAY(SELECT national_id FROM held) AS held_ids,
    ARRAY(SELECT household_id FROM held) AS held_by,
    EXISTS (
        SELECT FROM members m JOIN households h USING (household_id)
        WHERE m.relationship = 'HEAD' AND m.active AND m.name_km = $2 AND m.date_of_birth = $3
          AND h.village_code = $4
    ) AS possible_duplicate,
    (SELECT last_seq FROM card) AS card_seq,
    ARRAY(SELECT effective_from FROM village_classifications WHERE village_code = $4
          ORDER BY effective_from) AS reclassified_on,
    ARRAY(SELECT category FROM village_classifications WHERE village_code = $4
          ORDER BY effective_from) AS reclassified_as
"""


async def registration_facts(
    conn: asyncpg.Connection,
    *,
    national_ids: list[str],
    head_name_km: str,
    head_date_of_birth: date,
    village_code: str,
    reserve_card: bool,
) -> RegistrationFacts:
    """What registering one household needs from the registry, in one round trip; reserving a
    card number takes the village's sequence row lock until the transaction ends."""
    row = await conn.fetchrow(
        REGISTRATION_FACTS_SQL, national_ids, head_name_km, head_date_of_birth, village_code, reserve_card
    )
    reclassified = [
        {"effective_from": day, "category": category}
        for day, category in zip(row["reclassified_on"], row["reclassified_as"], strict=True)
    ]
    return RegistrationFacts(
        dict(zip(row["held_ids"], row["held_by"], strict=True)),
        row["possible_duplicate"],
        row["card_seq"],
        reclassified,
    )


def _registration_sql() -> str:
    household = 1
    members = household + len(HOUSEHOLD_COLUMNS)
    assessment = members + 1
    card = assessment + len(ASSESSMENT_COLUMNS)
    audit = card + len(CARD_COLUMNS)
    event = audit + len(AUDIT_COLUMNS)
    channel = event + len(OUTBOX_COLUMNS)
    card_values = ", ".join(f"${i}::{t}" for i, t in enumerate(CARD_TYPES, start=card))
    return f"""
WITH household AS (
    INSERT INTO households ({", ".join(HOUSEHOLD_COLUMNS)})
    VALUES ({_placeholders(len(HOUSEHOLD_COLUMNS), household)}) RETURNING registered_at, updated_at
), members AS (
    INSERT INTO members ({", ".join(MEMBER_COLUMNS)})
    SELECT {", ".join(MEMBER_COLUMNS)} FROM json_populate_recordset(NULL::members, ${members}::json)
), assessment AS (
    INSERT INTO assessments ({", ".join(ASSESSMENT_COLUMNS)})
    VALUES ({_placeholders(len(ASSESSMENT_COLUMNS), assessment)}) RETURNING created_at
), card AS (
    INSERT INTO cards ({", ".join(CARD_COLUMNS)}) SELECT {card_values} WHERE ${card}::text IS NOT NULL
), audit AS (
    INSERT INTO audit_log ({", ".join(AUDIT_COLUMNS)}) VALUES ({_placeholders(len(AUDIT_COLUMNS), audit)})
), event AS (
    INSERT INTO outbox ({", ".join(OUTBOX_COLUMNS)}) VALUES ({_placeholders(len(OUTBOX_COLUMNS), event)})
)
SELECT registered_at, updated_at, created_at, pg_notify(${channel}, '') FROM household, assessment
"""


REGISTRATION_SQL = _registration_sql()


async def insert_registration(
    conn: asyncpg.Connection,
    *,
    household: dict[str, Any],
    members: list[dict[str, Any]],
    assessment: dict[str, Any],
    card: dict[str, Any] | None,
    audit: dict[str, Any],
    event: tuple[Any, ...],
    channel: str,
) -> asyncpg.Record:
    """Every row of a new household in one statement (foreign keys are checked at its end), and
    the outbox relay woken at commit; returns the rows' timestamps."""
    return await conn.fetchrow(
        REGISTRATION_SQL,
        *[household[c] for c in HOUSEHOLD_COLUMNS],
        members,
        *[assessment[c] for c in ASSESSMENT_COLUMNS],
        *[card[c] if card else None for c in CARD_COLUMNS],
        *[audit[c] for c in AUDIT_COLUMNS],
        *event,
        channel,
    )


async def next_card_seqs(conn: asyncpg.Connection, village_code: str, count: int = 1) -> range:
    """Reserve ``count`` card sequence numbers of a village (the row lock serialises issuers)."""
    last = await conn.fetchval(
        "INSERT INTO village_card_sequences (village_code, last_seq) VALUES ($1, $2)"
        " ON CONFLICT (village_code) DO UPDATE SET last_seq = village_card_sequences.last_seq + $2"
        " RETURNING last_seq",
        village_code,
        count,
    )
    return range(last - count + 1, last + 1)


async def get_household(
    conn: asyncpg.Connection, household_id: UUID, *, for_update: bool = False
) -> asyncpg.Record | None:
    lock = " FOR UPDATE" if for_update else ""
    return await conn.fetchrow(f"SELECT * FROM households WHERE household_id = $1{lock}", household_id)


async def get_members(conn: asyncpg.Connection, household_id: UUID) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT * FROM members WHERE household_id = $1"
        " ORDER BY relationship <> 'HEAD', date_of_birth, member_id",
        household_id,
    )


async def get_latest_assessment(conn: asyncpg.Connection, household_id: UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT * FROM assessments WHERE household_id = $1 ORDER BY created_at DESC, assessment_id LIMIT 1",
        household_id,
    )


async def get_assessments(conn: asyncpg.Connection, household_id: UUID) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT * FROM assessments WHERE household_id = $1 ORDER BY created_at", household_id
    )


async def get_latest_card(conn: asyncpg.Connection, household_id: UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT * FROM cards WHERE household_id = $1 ORDER BY created_at DESC, card_number DESC LIMIT 1",
        household_id,
    )


async def get_card(conn: asyncpg.Connection, card_number: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM cards WHERE card_number = $1", card_number)


async def set_card_status(
    conn: asyncpg.Connection,
    card_number: str,
    status: str,
    *,
    reason: str | None = None,
    replaced_by: str | None = None,
) -> None:
    await conn.execute(
        "UPDATE cards SET status = $2, status_reason = $3, replaced_by = $4 WHERE card_number = $1",
        card_number,
        status,
        reason,
        replaced_by,
    )


async def cards_due_to_expire(conn: asyncpg.Connection, on: date) -> list[asyncpg.Record]:
    """ACTIVE cards whose validity ended before ``on`` (valid_until is the last valid day)."""
    return await conn.fetch(
        "SELECT card_number, household_id FROM cards WHERE status = 'ACTIVE' AND valid_until < $1"
        " ORDER BY valid_until FOR UPDATE SKIP LOCKED",
        on,
    )


async def village_classifications(conn: asyncpg.Connection, village_code: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT * FROM village_classifications WHERE village_code = $1 ORDER BY effective_from", village_code
    )


async def bump_version(conn: asyncpg.Connection, household_id: UUID, *, actor: str, **changes: Any) -> int:
    sets = ", ".join(f"{column} = ${i}" for i, column in enumerate(changes, start=3))
    extra = f", {sets}" if sets else ""
    return await conn.fetchval(
        f"UPDATE households SET version = version + 1, updated_at = now(), updated_by = $2{extra}"
        " WHERE household_id = $1 RETURNING version",
        household_id,
        actor,
        *changes.values(),
    )


async def update_member(conn: asyncpg.Connection, member_id: UUID, **changes: Any) -> None:
    sets = ", ".join(f"{column} = ${i}" for i, column in enumerate(changes, start=2))
    await conn.execute(f"UPDATE members SET {sets} WHERE member_id = $1", member_id, *changes.values())


async def deactivate_members(conn: asyncpg.Connection, household_id: UUID) -> None:
    await conn.execute("UPDATE members SET active = false WHERE household_id = $1", household_id)


async def insert_audit(
    conn: asyncpg.Connection,
    household_id: UUID,
    *,
    action: str,
    actor: str,
    version: int,
    details: dict[str, Any],
) -> None:
    await conn.execute(
        "INSERT INTO audit_log (household_id, action, actor, version, details) VALUES ($1, $2, $3, $4, $5)",
        household_id,
        action,
        actor,
        version,
        details,
    )


async def get_audit(conn: asyncpg.Connection, household_id: UUID) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT action, actor, at, version, details FROM audit_log WHERE household_id = $1 ORDER BY id",
        household_id,
    )


async def list_households(
    conn: asyncpg.Connection,
    *,
    filters: dict[str, Any],
    within: frozenset[str] | None,
    card_status: str | None,
    after: UUID | None,
    limit: int,
) -> list[asyncpg.Record]:
    """Keyset pagination on household_id; ``filters`` maps a column of households to a value;
    ``within``, when given, the commune and province codes the households must be in."""
    clauses, args = [], []
    for column, value in filters.items():
        args.append(value)
        clauses.append(f"h.{column} = ${len(args)}")
    if within is not None:
        args.append(list(within))
        clauses.append(f"(h.commune_code = ANY(${len(args)}) OR h.province_code = ANY(${len(args)}))")
    if card_status is not None:
        args.append(card_status)
        clauses.append(
            "(SELECT c.status FROM cards c WHERE c.household_id = h.household_id"
            f" ORDER BY c.created_at DESC, c.card_number DESC LIMIT 1) = ${len(args)}"
        )
    if after is not None:
        args.append(after)
        clauses.append(f"h.household_id > ${len(args)}")
    args.append(limit)
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    return await conn.fetch(
        f"SELECT h.* FROM households h {where} ORDER BY h.household_id LIMIT ${len(args)}", *args
    )


async def possible_duplicates(conn: asyncpg.Connection, commune_code: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT household_id, village_code, registered_at FROM households"
        " WHERE possible_duplicate AND status = 'ACTIVE' AND commune_code = $1 ORDER BY registered_at",
        commune_code,
    )


async def insert_village_classification(
    conn: asyncpg.Connection, village_code: str, *, effective_from: date, category: str, reason: str, by: str
) -> None:
    await conn.execute(
        "INSERT INTO village_classifications (village_code, effective_from, category, reason, decided_by)"
        " VALUES ($1, $2, $3, $4, $5)"
        " ON CONFLICT (village_code, effective_from) DO UPDATE SET category = EXCLUDED.category,"
        " reason = EXCLUDED.reason, decided_by = EXCLUDED.decided_by, decided_at = now()",
        village_code,
        effective_from,
        category,
        reason,
        by,
    )


async def active_household_ids_in_village(conn: asyncpg.Connection, village_code: str) -> list[UUID]:
    rows = await conn.fetch(
        "SELECT household_id FROM households WHERE village_code = $1 AND status = 'ACTIVE'"
        " ORDER BY household_id FOR UPDATE",
        village_code,
    )
    return [r["household_id"] for r in rows]
