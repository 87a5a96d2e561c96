"""Eligibility's full evaluations on the real PostgreSQL: split over worker processes they decide,
write and publish what one process does; migration 0004 derives every household's deciding facts
from its snapshot as the consumer does."""

import random
import shutil
import uuid
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import pytest
from eligibility import evaluation, store, workers
from eligibility.app import DEFINITION
from eligibility.household import facts_of
from factories import make_snapshot, make_snapshot_member
from krousar_common import db
from krousar_common.events.households import HouseholdSnapshot
from krousar_common.testing import TestStack
from topups import seed

PROGRAMMES = seed.load_seed([Path(seed.__file__).resolve().parent / "seed"])
PUBLISHING = evaluation.Publishing("t.eligibility.decisions.v1", "test")


def random_snapshot(rng: random.Random) -> dict[str, Any]:
    members = [
        make_snapshot_member(
            date_of_birth=date(
                rng.randrange(1935, 2025), rng.randrange(1, 13), rng.randrange(1, 29)
            ).isoformat(),
            has_disability=rng.random() < 0.2,
            in_school=rng.random() < 0.4,
        )
        for _ in range(rng.randrange(1, 6))
    ]
    level = rng.choice(["POOR_1", "POOR_2", "POOR_2", "NOT_POOR"])
    return make_snapshot(rng.choice(["12010101", "12110101", "01020101"]), level=level, members=members)


async def populate(url: str, snapshots: list[dict[str, Any]], enrolments: dict[str, uuid.UUID]) -> None:
    """Through the consumer's write (``store.upsert_household``) and the enrolment use case's row."""
    pool = await db.create_pool(url, min_size=1, max_size=1)
    try:
        async with pool.acquire() as conn, conn.transaction():
            for programme in PROGRAMMES:
                await store.upsert_programme(conn, programme)
            for data in snapshots:
                snapshot = HouseholdSnapshot.model_validate(data)
                await store.upsert_household(conn, snapshot, data)
                if data["household_id"] in enrolments:
                    row = enrolment_row(snapshot, enrolments[data["household_id"]])
                    await store.insert_enrolment(conn, row)
    finally:
        await pool.close()


def enrolment_row(snapshot: HouseholdSnapshot, enrolment_id: uuid.UUID) -> dict[str, Any]:
    return {
        "enrolment_id": enrolment_id,
        "household_id": snapshot.household_id,
        "status": "ACTIVE",
        "payee_type": "HEAD",
        "payee_name": snapshot.members[0].name_km,
        "payee_member_id": snapshot.head_member_id,
        "channel": "WING",
        "account": "012345678",
        "identity_document": "NATIONAL_ID",
        "verified_by": "staff-1",
        "verified_on": date(2023, 4, 1),
    }


async def state(url: str) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], Any]:
    """Decisions in force, the events published (without their ids and times) and the run's counts."""
    conn = await asyncpg.connect(url)
    try:
        decisions = await conn.fetch(
            "SELECT household_id, programme_code, programme_version, payment_key, eligible, reasons,"
            " amount_riel, effective_on, fingerprint FROM decisions ORDER BY 1, 2"
        )
        payloads = await conn.fetch("SELECT key, payload FROM outbox")
        run = await conn.fetchrow("SELECT households, decisions_changed FROM evaluation_runs")
    finally:
        await conn.close()
    events = sorted(
        (key, orjson.dumps({k: v for k, v in orjson.loads(p)["data"].items() if k != "decided_at"}))
        for key, p in payloads
    )
    return [tuple(r) for r in decisions], events, run


@pytest.fixture
async def databases(stack: TestStack) -> AsyncIterator[tuple[str, str, str]]:
    """Three eligibility databases holding the same 150 households (two in three enrolled)."""
    rng = random.Random(4)
    snapshots = [random_snapshot(rng) for _ in range(150)]
    enrolments = {s["household_id"]: uuid.uuid4() for s in snapshots if rng.random() < 0.67}
    urls = []
    for name in ("one", "split", "fresh"):
        database = f"eligibility_{name}_t{stack.run_id}"
        await db.migrate(stack.pg_url, database, DEFINITION.migrations)
        urls.append(f"{stack.pg_url}/{database}")
        await populate(urls[-1], snapshots, enrolments)
    yield urls[0], urls[1], urls[2]


async def evaluate(url: str, day: date, *, split: int) -> evaluation.Outcome:
    pool = await db.create_pool(url, min_size=1, max_size=2)
    try:
        async with pool.acquire() as conn:
            run_id = uuid.uuid4()
            await conn.execute("DELETE FROM evaluation_runs")
            await store.insert_run(conn, run_id, programmes=None, reason="test", by="test")
            await store.claim_runs(conn, day)
        if split == 1:
            return await evaluation.evaluate_all(pool, None, day, PUBLISHING, batch_size=7, run_ids=[run_id])
        return await workers.evaluate_in_workers(
            pool, url, None, day, PUBLISHING, workers=split, batch_size=7, run_ids=[run_id]
        )
    finally:
        await pool.close()


async def test_workers_decide_write_and_publish_what_one_process_does(databases) -> None:
    one, split, _ = databases
    # First decisions; a day later nothing changes; a new month changes every key; then a day at
    # which FLOOD_2022 is not known but COVID19_CT is running again.
    for day in (date(2025, 1, 15), date(2025, 1, 16), date(2025, 2, 1), date(2023, 3, 1)):
        alone = await evaluate(one, day, split=1)
        shared = await evaluate(split, day, split=3)

        assert (shared.households, shared.written, shared.published) == (
            alone.households,
            alone.written,
            alone.published,
        )
        assert await state(split) == await state(one)
    assert alone.households == 150 and alone.written > 0


async def test_migration_derives_the_deciding_facts_from_the_snapshot(
    stack: TestStack, tmp_path: Path
) -> None:
    database = f"eligibility_migration_t{stack.run_id}"
    before = tmp_path / "eligibility" / "migrations"
    before.mkdir(parents=True)
    for path in sorted(DEFINITION.migrations.glob("*.sql"))[:3]:  # up to 0003, the snapshot in jsonb
        shutil.copy(path, before)
    await db.migrate(stack.pg_url, database, before)
    rng = random.Random(7)
    snapshots = [random_snapshot(rng) for _ in range(20)]
    snapshots[0]["location_history"].append({"effective_from": "2023-01-01", "category": "RURAL"})
    snapshots[1]["members"][0].update(joined_on="2001-02-03", left_on="2024-05-06")
    conn = await asyncpg.connect(f"{stack.pg_url}/{database}")
    try:
        for data in snapshots:
            await conn.execute(
                "INSERT INTO households (household_id, version, province_code, district_code, commune_code,"
                " village_code, poverty_level, status, female_headed, snapshot)"
                " VALUES ($1, 1, $2, $3, $4, $5, $6, 'ACTIVE', $7, $8::jsonb)",
                uuid.UUID(data["household_id"]),
                data["province_code"],
                data["district_code"],
                data["commune_code"],
                data["village_code"],
                data["poverty_level"],
                data["female_headed"],
                orjson.dumps(HouseholdSnapshot.model_validate(data).model_dump(mode="json")).decode(),
            )
        await db.migrate(stack.pg_url, database, DEFINITION.migrations)
        stored = {
            str(r[0]): r[1] for r in await conn.fetch("SELECT household_id, facts::text FROM households")
        }
    finally:
        await conn.close()

    for data in snapshots:
        expected = facts_of(HouseholdSnapshot.model_validate(data).model_dump(mode="json"))
        assert orjson.loads(stored[data["household_id"]]) == expected


async def decided(url: str) -> list[tuple[Any, ...]]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT household_id, programme_code, programme_version, payment_key, eligible, reasons,"
            " amount_riel, fingerprint FROM decisions ORDER BY 1, 2"
        )
    finally:
        await conn.close()
    return [tuple(r) for r in rows]


async def test_a_new_month_decides_as_deciding_everyone_afresh(databases) -> None:
    """Decisions rewritten, or only moved to the new month's payment, equal first decisions."""
    rolled, _, fresh = databases
    await evaluate(rolled, date(2025, 1, 15), split=1)
    outcome = await evaluate(rolled, date(2025, 2, 1), split=1)
    await evaluate(fresh, date(2025, 2, 1), split=1)

    assert outcome.written > 0
    assert await decided(rolled) == await decided(fresh)
