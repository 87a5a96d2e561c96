"""Eligibility's own state: enrolments and PWYC conditions."""

from collections.abc import Sequence
from typing import Any
from uuid import UUID

import asyncpg

from eligibility.store.households import Span, households_in

# --- enrolments --------------------------------------------------------------------------------------

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


async def set_replaced_by(conn: asyncpg.Connection, enrolment_id: UUID, replaced_by: UUID) -> None:
    await conn.execute(
        "UPDATE enrolments SET replaced_by = $2 WHERE enrolment_id = $1", enrolment_id, replaced_by
    )


async def active_enrolments(
    conn: asyncpg.Connection, household_ids: Sequence[UUID], *, span: Span | None = None
) -> list[asyncpg.Record]:
    """The household id and what a decision carries (``Enrolment``) of the enrolments in force;
    ``span``: see ``households_in``."""
    where, args = households_in("household_id", household_ids, span)
    return await conn.fetch(
        "SELECT household_id, enrolment_id, payee_type, payee_name, payee_member_id, channel, account,"
        f" verified_by, verified_on FROM enrolments WHERE {where} AND status = 'ACTIVE'",
        *args,
    )


async def enrolment_history(conn: asyncpg.Connection, household_id: UUID) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT * FROM enrolments WHERE household_id = $1 ORDER BY created_at, enrolment_id", household_id
    )


# --- PWYC conditions ---------------------------------------------------------------------------------

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


async def get_condition(conn: asyncpg.Connection, event_id: UUID) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM conditions WHERE event_id = $1", event_id)


async def conditions_of(
    conn: asyncpg.Connection, household_ids: Sequence[UUID], *, span: Span | None = None
) -> list[asyncpg.Record]:
    where, args = households_in("household_id", household_ids, span)
    return await conn.fetch(
        f"SELECT * FROM conditions WHERE {where} ORDER BY occurred_on, recorded_at", *args
    )
