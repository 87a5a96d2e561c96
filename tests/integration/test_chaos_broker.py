"""The broker goes away in the middle of registrations: the outbox holds every event until it is
back, and nothing is lost or applied twice. Runs on a broker of its own (port 29092), so stopping
it disturbs no other test."""

import asyncio
import os
import subprocess
from collections.abc import AsyncIterator

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
        held = await registry.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NULL")
        await asyncio.to_thread(kafka, "start")

        ids = before + during

        async def all_applied() -> bool:
            count = await projection.fetchval(
                "SELECT count(*) FROM households WHERE household_id = ANY($1::uuid[])", ids
            )
            return count == len(ids)

        await wait_for(all_applied, timeout=120, interval=0.5, what="every household in eligibility")
        assert held > 0, "the broker was down, so some events must have waited in the outbox"
        assert await registry.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NULL") == 0
        event_ids = [
            r["event_id"]
            for r in await registry.fetch("SELECT event_id FROM outbox WHERE key = ANY($1)", ids)
        ]
        assert await projection.fetchval(
            "SELECT count(*) FROM inbox WHERE event_id = ANY($1::uuid[])", event_ids
        ) == len(ids)
    finally:
        await registry.close()
        await projection.close()
        registration.stop()
        eligibility.stop()
