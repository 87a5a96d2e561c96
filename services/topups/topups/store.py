"""SQL of the programme catalogue: one function per query, the connection first, never a commit."""

from typing import Any

import asyncpg
from krousar_common.programmes import ProgrammeVersion

COLUMNS = (
    "code, version, kind, status, origin, definition, superseded_by, created_at, created_by,"
    " updated_at, updated_by, activated_at, activated_by, closed_at, closed_by"
)


def definition_of(programme: ProgrammeVersion) -> dict[str, Any]:
    return programme.model_dump(mode="json")


def programme_of(row: asyncpg.Record) -> ProgrammeVersion:
    """The version as published: its definition with the authoritative version and status."""
    authoritative = {"version": row["version"], "status": row["status"]}
    return ProgrammeVersion.model_validate({**row["definition"], **authoritative})


async def lock_catalogue(conn: asyncpg.Connection) -> None:
    """Serialise catalogue writes (seeding replicas, concurrent activations) for this transaction."""
    await conn.execute("SELECT pg_advisory_xact_lock(7245003)")


async def insert_version(
    conn: asyncpg.Connection, programme: ProgrammeVersion, *, origin: str, actor: str
) -> bool:
    """False when this (code, version) exists already."""
    inserted = await conn.fetchval(
        "INSERT INTO programme_versions"
        " (code, version, kind, status, origin, definition, created_by, updated_by,"
        "  activated_at, activated_by)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $7,"
        "  CASE WHEN $4 = 'ACTIVE' THEN now() END, CASE WHEN $4 = 'ACTIVE' THEN $7 END)"
        " ON CONFLICT (code, version) DO NOTHING RETURNING true",
        programme.code,
        programme.version,
        programme.kind,
        programme.status,
        origin,
        definition_of(programme),
        actor,
    )
    return bool(inserted)


async def get_version(conn: asyncpg.Connection, code: str, version: int) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT {COLUMNS} FROM programme_versions WHERE code = $1 AND version = $2", code, version
    )


async def get_versions(
    conn: asyncpg.Connection, code: str, *, for_update: bool = False
) -> list[asyncpg.Record]:
    lock = " FOR UPDATE" if for_update else ""
    return await conn.fetch(
        f"SELECT {COLUMNS} FROM programme_versions WHERE code = $1 ORDER BY version{lock}", code
    )


async def latest_versions(conn: asyncpg.Connection, kind: str | None = None) -> list[asyncpg.Record]:
    """The newest version of every programme (of ``kind`` when given)."""
    return await conn.fetch(
        f"SELECT DISTINCT ON (code) {COLUMNS} FROM programme_versions"
        " WHERE $1::text IS NULL OR kind = $1 ORDER BY code, version DESC",
        kind,
    )


async def programme_summaries(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT code, kind,"
        " (array_agg(definition->>'title' ORDER BY version DESC))[1] AS title,"
        " max(version) AS latest_version,"
        " (array_agg(status ORDER BY version DESC))[1] AS latest_status,"
        " max(version) FILTER (WHERE status = 'ACTIVE') AS active_version,"
        " max(version) FILTER (WHERE status = 'DRAFT') AS draft_version,"
        " count(*) AS versions"
        " FROM programme_versions GROUP BY code, kind ORDER BY code"
    )


async def update_definition(
    conn: asyncpg.Connection, code: str, version: int, programme: ProgrammeVersion, actor: str
) -> None:
    await conn.execute(
        "UPDATE programme_versions SET definition = $3, updated_at = now(), updated_by = $4"
        " WHERE code = $1 AND version = $2",
        code,
        version,
        definition_of(programme),
        actor,
    )


async def set_active(conn: asyncpg.Connection, code: str, version: int, actor: str) -> None:
    await conn.execute(
        "UPDATE programme_versions SET status = 'ACTIVE', activated_at = now(), activated_by = $3,"
        " updated_at = now(), updated_by = $3 WHERE code = $1 AND version = $2",
        code,
        version,
        actor,
    )


async def set_closed(
    conn: asyncpg.Connection, code: str, version: int, actor: str, superseded_by: int | None = None
) -> None:
    await conn.execute(
        "UPDATE programme_versions SET status = 'CLOSED', closed_at = now(), closed_by = $3,"
        " superseded_by = $4, updated_at = now(), updated_by = $3 WHERE code = $1 AND version = $2",
        code,
        version,
        actor,
        superseded_by,
    )
