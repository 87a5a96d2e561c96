"""Benchmark: the registration API under a steady load from a second process on loopback.

    python -m bench.bench_api --rate 100 --seconds 30

Goal (issue 4): a steady 100 registrations/s, so that a registration's decision can be published
within 1 s. Besides latency, the report gives the CPU each request costs the service, PostgreSQL
and the load generator: on a shared 2-core machine those are what other work cannot blur.
"""

import argparse
import asyncio
import os
import subprocess
import sys
from pathlib import Path

import orjson
from krousar_common.testing import ServiceProcess, TestStack

from bench.common import ROOT, Report, Stage, cpu_jiffies, stolen_share, write_section
from bench.load import MAX_CONNECTIONS

TICKS = os.sysconf("SC_CLK_TCK")
WARM_UP_SECONDS = 10


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far (0 once it has gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS


def load(url: str, rate: float, seconds: float) -> dict:
    command = [
        sys.executable,
        "-m",
        "bench.load",
        "--url",
        url,
        "--rate",
        str(rate),
        "--seconds",
        str(seconds),
    ]
    output = subprocess.run(command, capture_output=True, text=True, check=True, cwd=ROOT).stdout
    return orjson.loads(output.strip().splitlines()[-1])


async def postgres_pids(stack: TestStack) -> list[int]:
    """The server processes serving the registration database (the service's pool)."""
    conn = await stack.connect("registration")
    try:
        own = await conn.fetchval("SELECT pg_backend_pid()")
        rows = await conn.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> $1", own
        )
    finally:
        await conn.close()
    return [r["pid"] for r in rows]


async def run(rate: float, seconds: float) -> Report:
    report = Report(
        f"Registration API at {rate:.0f} registrations/s",
        f"python -m bench.bench_api --rate {rate:.0f} --seconds {seconds:.0f}",
    )
    stack = TestStack()
    await stack.check_reachable()
    await stack.create_topics()
    registration = await ServiceProcess("registration", stack).start()
    try:
        # Warm-up at the rate measured: the service's pool opens the connections that rate needs
        # (each prepares its statements once), as in a service that has been running a while.
        await asyncio.to_thread(load, registration.url, rate, WARM_UP_SECONDS)
        assert registration.process is not None
        pids = [registration.process.pid, *await postgres_pids(stack)]
        before, jiffies = {pid: cpu_seconds(pid) for pid in pids}, cpu_jiffies()
        result = await asyncio.to_thread(load, registration.url, rate, seconds)
        stolen = stolen_share(jiffies, cpu_jiffies())
        # The pool opens connections as the load needs them: backends that started meanwhile count
        # from nothing.
        pids = [registration.process.pid, *await postgres_pids(stack)]
        used = [cpu_seconds(pid) - before.get(pid, 0.0) for pid in pids]
    finally:
        registration.stop()
        await stack.drop()
    per_request = 1000 / result["requests"]
    service_ms = used[0] * per_request
    postgres_ms = sum(used[1:]) * per_request
    report.stages.append(
        Stage(
            "POST /v1/households (3 members, scored, carded, outbox)",
            result["seconds"],
            result["requests"],
            "requests",
            f"p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms, max {result['max_ms']} ms,"
            f" failures {result['failures']}",
        )
    )
    report.notes.append(
        f"CPU per request: service {service_ms:.2f} ms, PostgreSQL {postgres_ms:.2f} ms,"
        f" load generator {result['cpu_ms_per_request']:.2f} ms; the hypervisor took {stolen:.0%} of the"
        " machine's CPU time meanwhile (steal: the virtual cores waited for real ones)."
    )
    report.notes.append(
        f"At {rate:.0f} requests/s the service and PostgreSQL need"
        f" {rate * (service_ms + postgres_ms) / 1000:.2f} of the machine's {os.cpu_count()} cores"
        " (the broker and the load generator share them too); failures are requests the load"
        f" generator could not send because {MAX_CONNECTIONS} were already waiting: the service fell"
        " behind."
    )
    report.notes.append(
        f"Load generator: bench/load.py, open loop (fixed send schedule), villages of Phnom Penh's"
        f" questionnaire in turn, own process, after {WARM_UP_SECONDS} s at the same rate; {result}"
    )
    print(result)
    print(report.notes[0])
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=float, default=100)
    parser.add_argument("--seconds", type=float, default=30)
    args = parser.parse_args()
    write_section(asyncio.run(run(args.rate, args.seconds)))


if __name__ == "__main__":
    main()
