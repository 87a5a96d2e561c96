"""SQL of the eligibility projections."""

from uuid import UUID

import asyncpg
from krousar_common.events.households import HouseholdSnapshot


async def upsert_household(conn: asyncpg.Connection, snapshot: HouseholdSnapshot) -> None:
    """Keep the newest version: an older snapshot arriving late never overwrites a newer one."""
    await conn.execute(
        "INSERT INTO households"
        " (household_id, version, province_code, commune_code, poverty_level, status, snapshot)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7)"
        " ON CONFLICT (household_id) DO UPDATE SET version = EXCLUDED.version,"
        " province_code = EXCLUDED.province_code, commune_code = EXCLUDED.commune_code,"
        " poverty_level = EXCLUDED.poverty_level, status = EXCLUDED.status, snapshot = EXCLUDED.snapshot,"
        " updated_at = now() WHERE households.version < EXCLUDED.version",
        snapshot.household_id,
        snapshot.version,
        snapshot.province_code,
        snapshot.commune_code,
        snapshot.poverty_level,
        snapshot.status,
        snapshot.model_dump(mode="json"),
    )


async def get_household(conn: asyncpg.Connection, household_id: UUID) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM households WHERE household_id = $1", household_id)
