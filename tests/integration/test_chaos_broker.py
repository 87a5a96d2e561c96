"""The broker goes away in the middle of registrations, of a bulk import and of a payment run's
instructions: the outbox holds every event until it is back, and nothing is lost or applied twice.
Runs on a broker of its own (port 29092), so stopping it disturbs no other test."""

import asyncio
import os
import subprocess
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from krousar_common.testing import ROOT, ServiceProcess, TestStack, bearer, wait_for
from payment_runs import approved_run
from registration import synthetic
from test_payments import psp_outcome, wait_state
from test_walking_skeleton import published_event_ids, register

KAFKA_SH = ROOT / "deploy" / "local" / "kafka.sh"
OWN_BROKER = {**os.environ, "KAFKA_NODES": "1", "KAFKA_BASE_PORT": "29092"}
# Some seconds of import: the broker goes away while it runs (its writes wait for that).
IMPORTED = 10_000
PAID = 3000


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


@pytest.fixture(scope="module")
async def own_registration(own_stack: TestStack) -> AsyncIterator[ServiceProcess]:
    service = await ServiceProcess("registration", own_stack).start()
    yield service
    service.kill()


@pytest.fixture(scope="module")
async def own_eligibility(own_stack: TestStack) -> AsyncIterator[ServiceProcess]:
    service = await ServiceProcess("eligibility", own_stack).start()
    yield service
    service.kill()


async def test_outbox_holds_events_while_the_broker_is_down(
    own_stack: TestStack, own_registration: ServiceProcess, own_eligibility: ServiceProcess
) -> None:
    registration = own_registration
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

        await wait_for(
            lambda: _all_projected(projection, before + during),
            timeout=120,
            interval=0.5,
            what="every household in eligibility",
        )
        assert len(held) == len(during), "the broker was down: every registration since must have waited"
        await wait_for(lambda: _outbox_empty(registry), timeout=30, what="the held rows deleted once sent")
        # Each held event applied exactly once (the inbox has one row per consumer and event).
        assert await _inbox_count(projection, held) == len(held)
    finally:
        await registry.close()
        await projection.close()


async def test_an_import_cut_off_from_the_broker_reaches_eligibility_once_it_is_back(
    own_stack: TestStack, own_registration: ServiceProcess, own_eligibility: ServiceProcess, tmp_path: Path
) -> None:
    path = tmp_path / "round.csv"
    synthetic.write_csv(path, IMPORTED)
    registry = await own_stack.connect("registration")
    holder = await own_stack.connect("registration")
    projection = await own_stack.connect("eligibility")
    admin = bearer("admin-1", "registry_admin")
    try:
        known = {r["household_id"] for r in await registry.fetch("SELECT household_id FROM households")}
        async with own_registration.client() as client:
            # However fast the machine, the import cannot write its events before the broker is
            # down: the test locks the outbox against writes (reads go on) while the broker stops.
            async with holder.transaction():
                await holder.execute("LOCK TABLE outbox IN SHARE MODE")
                stopping = asyncio.create_task(asyncio.to_thread(kafka, "stop"))
                started = await client.post(
                    "/v1/imports",
                    params={"file_name": path.name},
                    content=path.read_bytes(),
                    headers={**admin, "Content-Type": "text/csv"},
                )
                assert started.status_code == 202, started.text
                location = started.headers["location"]
                await stopping
                running = (await client.get(location, headers=admin)).json()

            async def finished() -> dict | None:
                body = (await client.get(location, headers=admin)).json()
                return body if body["status"] != "RUNNING" else None

            result = await wait_for(finished, timeout=120, interval=0.5, what="the import to finish")
        # One transaction: its events became visible to the relay all at once, with no broker.
        held = await registry.fetchval("SELECT count(*) FROM outbox")
        await asyncio.to_thread(kafka, "start")
        imported = [
            r["household_id"]
            for r in await registry.fetch("SELECT household_id FROM households")
            if r["household_id"] not in known
        ]
        await wait_for(
            lambda: _all_projected(projection, imported),
            timeout=120,
            interval=0.5,
            what="every imported household in eligibility",
        )
        event_ids = await published_event_ids(own_stack, registry, [str(h) for h in imported])
        applied = await _inbox_count(projection, event_ids)
    finally:
        await registry.close()
        await holder.close()
        await projection.close()

    assert running["status"] == "RUNNING", "the import ended before the broker went down"
    assert (result["status"], result["households_imported"]) == ("SUCCEEDED", IMPORTED), result
    assert held == IMPORTED
    assert len(event_ids) == len(imported) == IMPORTED  # one event a household on the topic
    assert applied == IMPORTED  # each applied once


async def test_a_run_cut_off_from_the_broker_while_instructing_reconciles_paying_each_household_once(
    own_stack: TestStack,
) -> None:
    payments_env = {
        "PAYMENTS_INSTRUCTION_BATCH_SIZE": "2",  # instructing lasts longer than the broker takes to stop
        "PAYMENTS_RESUME_INTERVAL_SECONDS": "1",
        "PAYMENTS_RECONCILE_INTERVAL_SECONDS": "0.5",
    }
    psp_env = {
        "PSP_PAID_SHARE": "0.9",
        "PSP_FAILED_SHARE": "0.1",
        "PSP_DUPLICATE_SHARE": "0.2",
        "PSP_SETTLE_DELAY_SECONDS": "0",
        "PSP_SEED": f"broker-{own_stack.run_id}",
    }
    async with approved_run(own_stack, PAID, payments_env=payments_env, psp_env=psp_env) as under_way:
        run, ledger, bank = under_way.run, under_way.ledger, under_way.bank
        run_id = uuid.UUID(run["run_id"])

        async def instructed() -> int:
            return await ledger.fetchval("SELECT count(*) FROM instructions WHERE run_id = $1", run_id)

        await wait_for(instructed, interval=0.01, what="instructions under way")
        await asyncio.to_thread(kafka, "stop")
        instructed_at_stop = await instructed()
        await wait_state(under_way.payments, run["run_id"], "INSTRUCTED", timeout=120)
        held = await ledger.fetchval(
            "SELECT count(*) FROM instructions WHERE run_id = $1 AND NOT published", run_id
        )
        await asyncio.to_thread(kafka, "start")
        await wait_state(under_way.payments, run["run_id"], "RECONCILED", timeout=120)
        settled = await bank.fetch(
            "SELECT payment_id, household_id, status, instructions_received FROM settlements"
            " WHERE run_id = $1",
            run_id,
        )
        states = await ledger.fetch("SELECT payment_id, state FROM line_states WHERE run_id = $1", run_id)
    psp = under_way.psp

    assert instructed_at_stop < run["lines"], "the run was instructed before the broker went down"
    assert held > 0, "the broker was down: the instructions written since must have waited"
    assert len(settled) == len({r["household_id"] for r in settled}) == run["lines"] == PAID
    assert {r["instructions_received"] for r in settled} == {1}, "a payment was instructed twice"
    expected = {r["payment_id"]: psp_outcome(psp, r["payment_id"]).status.value for r in settled}
    assert {r["payment_id"]: r["status"] for r in settled} == expected
    assert {r["payment_id"]: r["state"] for r in states} == expected


async def _all_projected(projection: asyncpg.Connection, household_ids: list) -> bool:
    count = await projection.fetchval(
        "SELECT count(*) FROM households WHERE household_id = ANY($1::uuid[])", household_ids
    )
    return count == len(household_ids)


async def _inbox_count(projection: asyncpg.Connection, event_ids: list) -> int:
    return await projection.fetchval("SELECT count(*) FROM inbox WHERE event_id = ANY($1::uuid[])", event_ids)


async def _outbox_empty(conn: asyncpg.Connection) -> bool:
    return await conn.fetchval("SELECT count(*) FROM outbox") == 0
