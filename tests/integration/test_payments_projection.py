"""Payments' projection of eligibility's decisions (store.upsert_decisions) on a real PostgreSQL:
the latest decision of each programme and household wins, in a batch as one by one, and each
household version is kept once however many decisions were made on it."""

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from factories import make_decision, make_snapshot
from krousar_common.events.eligibility import EligibilityDecided, ProgrammeDecision
from krousar_common.testing import migrated_pool
from payments import store

pytestmark = pytest.mark.integration
MIGRATIONS = Path(__file__).resolve().parents[2] / "services" / "payments" / "migrations"
NOW = datetime(2023, 3, 15, 1, tzinfo=UTC)


@pytest.fixture
async def conn() -> AsyncIterator[asyncpg.Connection]:
    async with migrated_pool("payments", MIGRATIONS) as pool, pool.acquire() as connection:
        yield connection


def decided(
    household: dict[str, Any], code: str, minutes: int, **over: Any
) -> tuple[EligibilityDecided, Any]:
    body = make_decision(household, code, decided_at=(NOW + timedelta(minutes=minutes)).isoformat(), **over)
    return EligibilityDecided.model_validate(body), body["household"]


async def upsert(conn: asyncpg.Connection, *decisions: tuple[EligibilityDecided, Any]) -> None:
    async with conn.transaction():
        await store.upsert_decisions(conn, decisions)


async def test_the_latest_decision_wins_and_each_household_version_is_kept_once(
    conn: asyncpg.Connection,
) -> None:
    household = make_snapshot()
    await upsert(
        conn,
        decided(household, "COVID19_CT", 0, enrolled=False),
        decided(household, "FAMILY_PACKAGE", 0),
        decided(household, "COVID19_CT", 2, eligible=False, reasons=["NOT_ENROLLED"], enrolled=False),
        decided(household, "COVID19_CT", 1),  # decided before the one above, delivered after it
    )
    await upsert(conn, decided(household, "FAMILY_PACKAGE", -1, eligible=False, reasons=["LATE"]))

    rows = await conn.fetch("SELECT programme_code, eligible, reasons FROM decisions ORDER BY 1")
    assert [tuple(r) for r in rows] == [
        ("COVID19_CT", False, ["NOT_ENROLLED"]),
        ("FAMILY_PACKAGE", True, []),
    ]
    kept = await conn.fetch("SELECT household_id, version, snapshot FROM decided_households")
    assert [(str(r["household_id"]), r["version"], r["snapshot"]) for r in kept] == [
        (household["household_id"], 1, household)
    ]

    moved = {**household, "version": 2, "village_code": "12010102"}
    await upsert(conn, decided(moved, "COVID19_CT", 3), decided(moved, "FAMILY_PACKAGE", 3))

    assert await conn.fetchval("SELECT count(*) FROM decided_households") == 2
    versions = await conn.fetch("SELECT household_version, village_code FROM decisions")
    assert {tuple(r) for r in versions} == {(2, "12010102")}


async def test_an_event_carries_each_programme_decided_together_and_one_event_changes_only_its_own(
    conn: asyncpg.Connection,
) -> None:
    household = make_snapshot()
    together, _ = decided(household, "COVID19_CT", 0)
    family = {
        "programme_code": "FAMILY_PACKAGE",
        "programme_version": 2,
        "eligible": False,
        "reasons": ["NOT_POOR"],
    }
    together = together.model_copy(update={"decisions": [*together.decisions, ProgrammeDecision(**family)]})
    await upsert(conn, (together, household))
    await upsert(conn, decided(household, "COVID19_CT", 1, eligible=False, reasons=["CARD_EXPIRED"]))

    rows = await conn.fetch(
        "SELECT programme_code, programme_version, eligible, reasons, enrolment->>'channel' AS channel"
        " FROM decisions ORDER BY 1"
    )
    assert [tuple(r) for r in rows] == [
        ("COVID19_CT", 1, False, ["CARD_EXPIRED"], "WING"),
        ("FAMILY_PACKAGE", 2, False, ["NOT_POOR"], "WING"),
    ]
    assert await conn.fetchval("SELECT count(*) FROM decided_households") == 1
