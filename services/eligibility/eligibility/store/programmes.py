"""The programme projection (programmes.topups.v1): the latest published version of each."""

from collections.abc import Sequence

import asyncpg
from krousar_common.programmes import ProgrammeVersion

# --- programmes --------------------------------------------------------------------------------------


async def upsert_programme(conn: asyncpg.Connection, programme: ProgrammeVersion) -> bool:
    """Keep the version in force: a later version takes its place once ACTIVE (a later one closed
    before it ever was, such as a dropped DRAFT, never); at the same version only ACTIVE → CLOSED."""
    applied = await conn.fetchval(
        "INSERT INTO programmes (code, version, kind, status, definition) VALUES ($1, $2, $3, $4, $5)"
        " ON CONFLICT (code) DO UPDATE SET version = EXCLUDED.version, kind = EXCLUDED.kind,"
        " status = EXCLUDED.status, definition = EXCLUDED.definition, received_at = now()"
        " WHERE (programmes.version < EXCLUDED.version AND EXCLUDED.status = 'ACTIVE')"
        " OR (programmes.version = EXCLUDED.version"
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
