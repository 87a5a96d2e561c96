"""Eligibility's household projection (store.upsert_households) on a real PostgreSQL: the newest
version of each household wins, in a batch as one by one; an older one arriving late changes
nothing."""

from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from eligibility import store
from factories import make_snapshot
from krousar_common.events.households import HouseholdSnapshot
from krousar_common.testing import migrated_pool

pytestmark = pytest.mark.integration
MIGRATIONS = Path(__file__).resolve().parents[2] / "services" / "eligibility" / "migrations"


@pytest.fixture
async def conn() -> AsyncIterator[asyncpg.Connection]:
    async with migrated_pool("eligibility", MIGRATIONS) as pool, pool.acquire() as connection:
        yield connection


async def upsert(conn: asyncpg.Connection, *snapshots: HouseholdSnapshot) -> None:
    async with conn.transaction():
        await store.upsert_households(conn, [(s, s.model_dump(mode="json")) for s in snapshots])


async def test_the_newest_version_of_each_household_wins(conn: asyncpg.Connection) -> None:
    first = make_snapshot("12010101")
    other = make_snapshot("12010101")
    moved = {**first, "version": 2, "village_code": "12010102"}
    same_version = {**first, "version": 2, "village_code": "12010103"}
    await upsert(
        conn,
        *(HouseholdSnapshot.model_validate(s) for s in (first, other, moved, same_version, first)),
    )
    await upsert(conn, HouseholdSnapshot.model_validate(first))  # delivered late

    rows = await conn.fetch("SELECT household_id, version, village_code, snapshot FROM households")
    held = {
        str(r["household_id"]): (r["version"], r["village_code"], r["snapshot"]["village_code"]) for r in rows
    }
    assert held == {
        first["household_id"]: (2, "12010102", "12010102"),
        other["household_id"]: (1, "12010101", "12010101"),
    }
