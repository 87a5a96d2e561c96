"""The broker goes away in the middle of registrations: the outbox holds every event until it is
back, and nothing is lost or applied twice. Runs on a broker of its own (port 29092), so stopping
it disturbs no other test."""

import asyncio
import os
import subprocess
from collections.abc import AsyncIterator

import asyncpg
import pytest
from krousar_common.testing import ROOT, ServiceProcess, TestStack, wait_for
from test_walking_skeleton import register

KAFKA_SH = ROOT / "deploy" / "local" / "kafka.sh"
OWN_BROKER = {**os.environ, "KAFKA_NODES": "1", "KAFKA_BASE_PORT": "29092"}


def kafka(*args: str) -> None:
    subprocess.run(
        ["bash", str(KAFKA_SH), *args], env=OWN_BROKER, check=True, capture_output=True, timeout=180
    )


@pytest.fixture(scope="module")
async def own_stack() -> AsyncIterator[TestStack]:
    await asyncio.to_thread(kafka, "start")
    stack = TestStack(kafka_bootstrap="127.0.0.1:29092")
    await stack.create_topics()
    yield stack
    await stack.drop()
    await asyncio.to_thread(kafka, "stop")


async def test_outbox_holds_events_while_the_broker_is_down(own_stack: TestStack) -> None:
    registration = await ServiceProcess("registration", own_stack).start()
    eligibility = await ServiceProcess("eligibility", own_stack).start()
    registry = await own_stack.connect("registration")
    projection = await own_stack.connect("eligibility")
    try:
        before = [await register(registration) for _ in range(20)]
        await asyncio.to_thread(kafka, "stop")
        during = [await register(registration) for _ in range(20)]  # writes go on: the outbox keeps them
        # The relay deletes a row once the broker has it: what is in the outbox now is held.
        rows = await registry.fetch("SELECT event_id FROM outbox WHERE key = ANY($1)", during)
        held = [r["event_id"] for r in rows]
        await asyncio.to_thread(kafka, "start")

        ids = before + during

        async def all_applied() -> bool:
            count = await projection.fetchval(
                "SELECT count(*) FROM households WHERE household_id = ANY($1::uuid[])", ids
            )
            return count == len(ids)

        await wait_for(all_applied, timeout=120, interval=0.5, what="every household in eligibility")
        assert len(held) == len(during), "the broker was down: every registration since must have waited"
        await wait_for(lambda: _outbox_empty(registry), timeout=30, what="the held rows deleted once sent")
        # Each held event applied exactly once (the inbox has one row per consumer and event).
        assert await projection.fetchval(
            "SELECT count(*) FROM inbox WHERE event_id = ANY($1::uuid[])", held
        ) == len(held)
    finally:
        await registry.close()
        await projection.close()
        registration.stop()
        eligibility.stop()


async def _outbox_empty(conn: asyncpg.Connection) -> bool:
    return await conn.fetchval("SELECT count(*) FROM outbox") == 0
