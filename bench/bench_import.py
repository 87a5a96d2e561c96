"""Benchmark: bulk import of synthetic households through the registration API.

    python -m bench.bench_import --households 100000

Target (issue 3): 100,000 households (~400,000 members) imported in under 60 s on this machine.
"""

import argparse
import asyncio
import time

import httpx
from krousar_common import topics
from krousar_common.testing import ServiceProcess, TestStack, bearer, wait_for
from registration import synthetic

from bench.common import DATA, Report, Stage, write_section
from bench.floors import average_record_size, copy_floor, kafka_producer_floor

TABLES = ["households", "members", "assessments", "cards", "audit_log"]


async def run(households: int, seed: int) -> Report:
    report = Report(
        f"Registration bulk import, {households:,} households", f"make bench-import HOUSEHOLDS={households}"
    )
    path = DATA / f"households-{households}-seed{seed}.csv"
    if not path.exists():
        DATA.mkdir(exist_ok=True)
        with report.stage("generate synthetic CSV (not part of the target)", households, "households"):
            stats = synthetic.write_csv(path, households, seed=seed)
        report.notes.append(f"Synthetic data: {stats}")
    stack = TestStack()
    await stack.check_reachable()
    await stack.create_topics()
    registration = await ServiceProcess("registration", stack).start()
    try:
        await _import(report, registration, stack, path, households)
    finally:
        registration.stop()
        await stack.drop()
    return report


async def _import(
    report: Report, registration: ServiceProcess, stack: TestStack, path, households: int
) -> None:
    body = path.read_bytes()
    admin = bearer("bench", "registry_admin")
    async with httpx.AsyncClient(base_url=registration.url, timeout=1800) as client:
        with report.stage(
            "import: parse + validate + score + COPY + outbox", households, "households"
        ) as stage:
            response = await client.post(
                "/v1/imports",
                params={"wait": "true", "file_name": path.name},
                content=body,
                headers={**admin, "Content-Type": "text/csv"},
            )
            result = response.json()
            stage.note = (
                f"imported {result['households_imported']:,}, rejected {result['households_rejected']:,}"
            )
    assert response.status_code == 200 and result["status"] == "SUCCEEDED", result
    conn = await stack.connect("registration")
    try:
        started = time.perf_counter()
        await wait_for(lambda: _drained(conn), timeout=1800, interval=0.5, what="the outbox to drain")
        relay_seconds = time.perf_counter() - started
        report.notes.append(
            f"Outbox relay drained the last events {relay_seconds:.1f} s after the import answered."
        )
        copy_seconds, rows = await copy_floor(conn, TABLES)
    finally:
        await conn.close()
    size = await average_record_size(stack.kafka_bootstrap, stack.topic(topics.HOUSEHOLDS.name))
    report.stages.append(_floor_stage("floor: PostgreSQL COPY of the same rows", copy_seconds, rows, "rows"))
    kafka_seconds, _ = kafka_producer_floor(
        stack.kafka_bootstrap, stack.topic(topics.HOUSEHOLDS.name), households, size
    )
    report.stages.append(
        _floor_stage(
            f"floor: Kafka ProducerPerformance, {size} B records", kafka_seconds, households, "events"
        )
    )
    ours = report.stages[-3].seconds
    report.notes.append(
        f"Import time / COPY floor = {ours / copy_seconds:.1f}x (the import also validates, scores,"
        " builds the events and writes them to the outbox; the floor copies the registry's rows only,"
        " the relay having deleted the sent events)"
    )


def _floor_stage(name: str, seconds: float, items: int, unit: str) -> Stage:
    print(f"  {name}: {seconds:.1f} s, {items / seconds:,.0f} {unit}/s", flush=True)
    return Stage(name, seconds, items, unit)


async def _drained(conn) -> bool:
    return await conn.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NULL") == 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--households", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=2023)
    args = parser.parse_args()
    report = asyncio.run(run(args.households, args.seed))
    write_section(report)


if __name__ == "__main__":
    main()
