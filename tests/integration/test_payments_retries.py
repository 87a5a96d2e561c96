"""A retried approval or cancellation with the same ``Idempotency-Key`` answers the first one again
(a retry without the key is refused: the run has moved on)."""

import uuid
from typing import Any

import pytest
from factories import make_snapshot
from krousar_common.testing import ServiceProcess, TestStack
from test_payments import APPROVER, OPERATOR, Bus, created, decisions_for, publish, renamed, seed


@pytest.fixture(scope="module")
async def bus(stack: TestStack) -> Any:
    bus = Bus(stack)
    await bus.producer.start()
    yield bus
    await bus.producer.stop()


async def calculated_run(stack: TestStack, bus: Bus, payments: ServiceProcess, period: str) -> str:
    code = f"RETRY_{uuid.uuid4().hex[:6].upper()}"
    await publish(bus, stack, renamed(seed("COVID19_CT"), code), decisions_for(code, [make_snapshot()]))
    run = await created(payments, code, period=period)
    assert run["state"] == "CALCULATED", run
    return run["run_id"]


async def test_a_retried_approval_answers_the_first_approval(stack, bus, payments) -> None:
    run_id = await calculated_run(stack, bus, payments, "2021-05")
    headers = {**APPROVER, "Idempotency-Key": str(uuid.uuid4())}

    async with payments.client() as client:
        first = await client.post(f"/v1/runs/{run_id}/approval", headers=headers)
        retry = await client.post(f"/v1/runs/{run_id}/approval", headers=headers)
        without_key = await client.post(f"/v1/runs/{run_id}/approval", headers=APPROVER)

    assert first.status_code == retry.status_code == 200, (first.text, retry.text)
    assert retry.json() == first.json()
    assert retry.headers["idempotent-replayed"] == "true"
    assert without_key.status_code == 409


async def test_a_retried_cancellation_answers_the_first_cancellation(stack, bus, payments) -> None:
    run_id = await calculated_run(stack, bus, payments, "2021-06")
    headers = {**OPERATOR, "Idempotency-Key": str(uuid.uuid4())}
    body = {"reason": "wrong period"}

    async with payments.client() as client:
        first = await client.post(f"/v1/runs/{run_id}/cancellation", json=body, headers=headers)
        retry = await client.post(f"/v1/runs/{run_id}/cancellation", json=body, headers=headers)
        without_key = await client.post(f"/v1/runs/{run_id}/cancellation", json=body, headers=OPERATOR)

    assert first.status_code == retry.status_code == 200, (first.text, retry.text)
    assert first.json()["state"] == "CANCELLED"
    assert retry.json() == first.json()
    assert without_key.status_code == 409
