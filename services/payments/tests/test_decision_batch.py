"""A batch of decisions made ready in a worker process (binary COPY rows) is written exactly as the
service process writes it."""

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from factories import make_decision, make_snapshot, make_snapshot_member
from krousar_common import db
from krousar_common.batch_consumer import prepare
from krousar_common.events import decode, make_envelope
from krousar_common.events.eligibility import EligibilityDecided
from krousar_common.testing import TestStack
from payments import events, store

MIGRATIONS = Path(__file__).resolve().parents[1] / "migrations"


def decision_events() -> list[bytes]:
    """Decisions with every kind of value: no card, no enrolment, reasons or none, Khmer names,
    several programmes, a household's two versions, and one decided earlier delivered late."""
    bodies: list[dict[str, Any]] = []
    decided = datetime(2023, 3, 15, 8, 30, 0, 123456, tzinfo=UTC)
    for n in range(40):
        household = make_snapshot(
            "12010101" if n % 2 else "02030405",
            level="POOR_2" if n % 3 else "POOR_1",
            members=[
                make_snapshot_member(name_km="ស៊ីម សុភាព"),
                make_snapshot_member(date_of_birth="2019-01-31", relationship="CHILD", in_school=n % 2 == 0),
            ],
            **({"card": None} if n % 5 == 0 else {}),
        )
        for code in ("COVID19_CT", "FAMILY"):
            body = make_decision(
                household,
                code,
                eligible=n % 4 != 0,
                reasons=["NOT_ENROLLED"] * (n % 4 == 0),
                enrolled=n % 3 != 0,
            )
            body["decided_at"] = (decided + timedelta(seconds=n)).isoformat()
            bodies.append(body)
    later = {**bodies[0]["household"], "version": 2, "status": "WITHDRAWN"}
    bodies.append(
        make_decision(later, "COVID19_CT", eligible=False, reasons=["HOUSEHOLD_WITHDRAWN", "NO_CARD"])
    )
    stale = make_decision(bodies[2]["household"], "COVID19_CT", eligible=False, reasons=["LATE"])
    stale["decided_at"] = (decided - timedelta(days=1)).isoformat()
    bodies.append(stale)
    return [
        make_envelope(
            EligibilityDecided.model_validate(body), source="test", subject="h", correlation_id="c"
        ).to_bytes()
        for body in bodies
    ]


@pytest.fixture
async def two_databases() -> AsyncIterator[tuple[asyncpg.Pool, asyncpg.Pool]]:
    stack = TestStack()
    await stack.check_reachable()
    pools = []
    try:
        for name in ("payments", "payments_offloaded"):
            await db.migrate(stack.pg_url, stack.database(name), MIGRATIONS)
            pools.append(
                await db.create_pool(f"{stack.pg_url}/{stack.database(name)}", min_size=1, max_size=1)
            )
        yield pools[0], pools[1]
    finally:
        for pool in pools:
            await pool.close()
        await stack.drop()


async def state(pool: asyncpg.Pool) -> list[list[tuple[Any, ...]]]:
    async with pool.acquire() as conn:
        return [
            [
                tuple(r)
                for r in await conn.fetch("SELECT * FROM decisions ORDER BY programme_code, household_id")
            ],
            [tuple(r) for r in await conn.fetch("SELECT * FROM decided_households ORDER BY 1, 2")],
        ]


@pytest.mark.integration
async def test_decisions_written_from_a_worker_s_rows_are_the_service_process_s(
    two_databases: tuple[asyncpg.Pool, asyncpg.Pool],
) -> None:
    in_process, offloaded = two_databases
    values = decision_events()
    prepared = prepare(events.decision_batch, values)
    assert prepared is not None and len(prepared.event_ids) == len(values)

    for half in (values[:41], values[41:]):  # two batches: the second finds decisions to overwrite
        async with in_process.acquire() as conn, conn.transaction():
            await events.on_decisions(conn, [decode(value) for value in half])
        batch = prepare(events.decision_batch, half)
        assert batch is not None
        async with offloaded.acquire() as conn, conn.transaction():
            await events.write_decision_batch(conn, batch.payload)

    expected = await state(in_process)
    assert expected[0] and expected[1]
    assert await state(offloaded) == expected


def test_a_batch_with_a_poison_message_or_an_event_twice_is_left_to_the_runner() -> None:
    values = decision_events()[:3]
    assert prepare(events.decision_batch, [*values, b"{not json"]) is None
    assert prepare(events.decision_batch, [*values, values[0]]) is None
    assert store.DECISION_TYPES and len(store.DECISION_TYPES) == len(store.DECISION_COLUMNS)
