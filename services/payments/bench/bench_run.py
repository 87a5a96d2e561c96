"""Benchmark: a national payment run calculated, stored and instructed.

    .venv/bin/python services/payments/bench/bench_run.py --households 705487

Target (issue 5): 705,487 households calculated, stored and instructed in under 60 s. The
projection is loaded straight into the payments database with COPY (building it from Kafka is
eligibility's pipeline, not the run); then the run goes through the real API of a real process:
create and calculate (wait=true), approve and instruct (wait=true), and the outbox relay publishes.
"""

import argparse
import asyncio
import random
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
import orjson
from krousar_common.programmes import load_programme
from krousar_common.testing import ROOT, ServiceProcess, TestStack, bearer, wait_for

PROGRAMME = ROOT / "services" / "topups" / "topups" / "seed" / "COVID19_CT.json"
VILLAGES = [
    ("12010101", "PHNOM_PENH"),
    ("17010101", "OTHER_URBAN"),
    ("17020304", "RURAL"),
    ("08010101", "RURAL"),
]
# Cambodia, March 2023: 2,783,989 people in 705,487 households, about 3.9 a household.
MEMBER_BIRTHS = [
    "1980-05-01",
    "1982-01-01",
    "2012-03-01",
    "2015-06-01",
    "1955-01-01",
    "2019-01-01",
    "2008-01-01",
]


def member(rng: random.Random, born: str, relationship: str) -> dict[str, Any]:
    return {
        "member_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "name_km": "សុខ ចាន់",
        "sex": rng.choice("MF"),
        "date_of_birth": born,
        "relationship": relationship,
        "has_disability": rng.random() < 0.02,
    }


def snapshot(rng: random.Random) -> dict[str, Any]:
    village, category = rng.choice(VILLAGES)
    size = rng.choice((2, 3, 4, 4, 5, 5, 6))
    members = [member(rng, MEMBER_BIRTHS[0], "HEAD")] + [
        member(rng, MEMBER_BIRTHS[i], "CHILD") for i in range(1, size)
    ]
    return {
        "household_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "version": 1,
        "village_code": village,
        "commune_code": village[:6],
        "district_code": village[:4],
        "province_code": village[:2],
        "location_history": [{"effective_from": "1900-01-01", "category": category}],
        "interviewed_on": "2020-06-15",
        "poverty_level": rng.choice(("POOR_1", "POOR_2")),
        "head_member_id": members[0]["member_id"],
        "female_headed": members[0]["sex"] == "F",
        "card": {
            "card_number": f"{village}-00001-0",
            "status": "ACTIVE",
            "issued_on": "2020-06-15",
            "valid_until": "2026-06-14",
        },
        "members": members,
    }


def decision_rows(count: int, seed: int) -> Iterator[tuple[Any, ...]]:
    rng = random.Random(seed)
    now = datetime.now(UTC)
    for _ in range(count):
        household = snapshot(rng)
        enrolment = {
            "enrolment_id": str(uuid.uuid4()),
            "payee_type": "HEAD",
            "payee_name": "សុខ ចាន់",
            "channel": "WING",
            "account": f"0{rng.randrange(10**8, 10**9)}",
            "verified_by": "bench",
            "verified_on": "2020-06-20",
        }
        yield (
            "COVID19_CT",
            uuid.UUID(household["household_id"]),
            1,
            True,
            [],
            now.date(),
            now,
            1,
            household["province_code"],
            household["commune_code"],
            orjson.dumps(household).decode(),
            orjson.dumps(enrolment).decode(),
        )


async def load_projection(stack: TestStack, households: int) -> None:
    conn = await asyncpg.connect(f"{stack.pg_url}/{stack.database('payments')}")
    try:
        definition = load_programme(PROGRAMME).model_dump_json()
        await conn.execute(
            "INSERT INTO programme_versions (code, version, status, definition) VALUES ($1, 1, 'ACTIVE', $2)",
            "COVID19_CT",
            definition,
        )
        rows = decision_rows(households, seed=2023)
        columns = [
            "programme_code",
            "household_id",
            "programme_version",
            "eligible",
            "reasons",
            "effective_on",
            "decided_at",
            "household_version",
            "province_code",
            "commune_code",
            "snapshot",
            "enrolment",
        ]
        while chunk := [row for _, row in zip(range(50_000), rows, strict=False)]:
            await conn.copy_records_to_table("decisions", records=chunk, columns=columns)
        await conn.execute("ANALYZE decisions")
    finally:
        await conn.close()


async def drained(stack: TestStack) -> bool:
    conn = await asyncpg.connect(f"{stack.pg_url}/{stack.database('payments')}")
    try:
        return await conn.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NULL") == 0
    finally:
        await conn.close()


def stage(name: str, started: float, households: int) -> float:
    seconds = time.perf_counter() - started
    print(f"{name:<44} {seconds:7.1f} s  {households / seconds:9,.0f} households/s", flush=True)
    return seconds


async def run(households: int) -> None:
    stack = TestStack()
    await stack.check_reachable()
    await stack.create_topics()
    payments = await ServiceProcess("payments", stack).start()
    try:
        started = time.perf_counter()
        await load_projection(stack, households)
        stage("load projection with COPY (not in the target)", started, households)
        async with httpx.AsyncClient(base_url=payments.url, timeout=1800) as client:
            started = time.perf_counter()
            created = await client.post(
                "/v1/runs",
                params={"wait": "true"},
                json={"programme_code": "COVID19_CT", "period": "2023-03"},
                headers=bearer("bench-operator", "payment_operator"),
            )
            run = created.json()
            assert run["state"] == "CALCULATED", run
            calculated = stage("create + calculate + store (COPY)", started, households)
            started = time.perf_counter()
            approved = await client.post(
                f"/v1/runs/{run['run_id']}/approval",
                params={"wait": "true"},
                headers=bearer("bench-approver", "payment_approver"),
            )
            assert approved.json()["state"] == "INSTRUCTED", approved.text
            instructed = stage("approve + instruct (outbox COPY)", started, households)
            started = time.perf_counter()
            await wait_for(lambda: drained(stack), timeout=1800, interval=0.5, what="outbox drained")
            published = stage("outbox relay: last instruction on Kafka", started, households)
        print(f"households {run['households']:,}, lines {run['lines']:,}, {run['amount_riel']:,} riel")
        print(
            f"calculated + stored + instructed: {calculated + instructed:.1f} s"
            f" (+ {published:.1f} s until all published)"
        )
    finally:
        payments.stop()
        await stack.drop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--households", type=int, default=705_487)
    asyncio.run(run(parser.parse_args().households))
