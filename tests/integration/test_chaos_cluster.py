"""A three-broker Kafka cluster (replication factor 3, min.insync.replicas 2): one broker stops in
the middle of a payment run; the run is still instructed, settled and reconciled, every household
paid exactly once. The cluster is the local stack's own (deploy/local/kafka.sh, KAFKA_NODES=3)."""

import asyncio
import os
import subprocess
from collections.abc import AsyncIterator

import httpx
import pytest
from krousar_common import kafka, topics
from krousar_common.testing import ROOT, ServiceProcess, TestStack, bearer, wait_for

from bench.bench_payments import load_projection

KAFKA_SH = ROOT / "deploy" / "local" / "kafka.sh"
CLUSTER = {**os.environ, "KAFKA_NODES": "3"}
BOOTSTRAP = "127.0.0.1:19092,127.0.0.1:19094,127.0.0.1:19096"
HOUSEHOLDS = 3000


def cluster(*args: str) -> None:
    subprocess.run(["bash", str(KAFKA_SH), *args], env=CLUSTER, check=True, capture_output=True, timeout=240)


@pytest.fixture(scope="module")
async def cluster_stack() -> AsyncIterator[TestStack]:
    await asyncio.to_thread(cluster, "start")
    stack = TestStack(kafka_bootstrap=BOOTSTRAP)
    await kafka.create_topics(
        BOOTSTRAP, topics.all_topic_names(stack.topic_prefix), partitions=3, replication=3
    )
    yield stack
    await stack.drop()
    await asyncio.to_thread(cluster, "stop")


async def test_a_run_survives_losing_one_of_three_brokers(cluster_stack: TestStack) -> None:
    stack = cluster_stack
    payments = await ServiceProcess("payments", stack).start()
    psp = await ServiceProcess(
        "psp_simulator",
        stack,
        PSP_DATABASE=stack.database("psp_simulator"),
        PSP_SETTLE_DELAY_SECONDS="0",
        PSP_UNCLAIMED_DELAY_SECONDS="1",
    ).start()
    try:
        await load_projection(stack, HOUSEHOLDS)
        async with httpx.AsyncClient(base_url=payments.url, timeout=300) as client:
            created = await client.post(
                "/v1/runs",
                params={"wait": "true"},
                json={"programme_code": "COVID19_CT", "period": "2023-03"},
                headers=bearer("operator", "payment_operator"),
            )
            run = created.json()
            assert run["state"] == "CALCULATED", run
            approval = asyncio.create_task(
                client.post(
                    f"/v1/runs/{run['run_id']}/approval",
                    params={"wait": "true"},
                    headers=bearer("approver", "payment_approver"),
                )
            )
            await asyncio.to_thread(cluster, "stop-node", "2")  # while instructions are being published
            assert (await approval).json()["state"] in {"INSTRUCTED", "RECONCILED"}
            final = await wait_for(
                lambda: _reconciled(client, run["run_id"]),
                timeout=180,
                interval=1,
                what="the run to reconcile with one broker down",
            )
        psp_db = await stack.connect("psp_simulator")
        try:
            received = await psp_db.fetchrow(
                "SELECT count(*) AS payments, count(DISTINCT household_id) AS households,"
                " max(instructions_received) AS most FROM settlements WHERE run_id = $1::uuid",
                run["run_id"],
            )
        finally:
            await psp_db.close()
        assert final["households"] == HOUSEHOLDS
        assert (received["payments"], received["households"]) == (run["lines"], HOUSEHOLDS)
        assert received["most"] == 1, "a payment was instructed twice"
    finally:
        psp.stop()
        payments.stop()
        await asyncio.to_thread(cluster, "start-node", "2")


async def _reconciled(client: httpx.AsyncClient, run_id: str) -> dict | None:
    response = await client.get(f"/v1/runs/{run_id}", headers=bearer("viewer", "payment_operator"))
    body = response.json()
    return body if body["state"] == "RECONCILED" else None
