"""Benchmark: the registration API under a steady load from a second process on loopback.

    python -m bench.bench_api --rate 200 --seconds 30

Goal (issue 7): p99 under 50 ms at 200 registrations/s.
"""

import argparse
import asyncio
import subprocess
import sys

import orjson
from krousar_common.testing import ServiceProcess, TestStack

from bench.common import ROOT, Report, Stage, write_section


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
        await asyncio.to_thread(load, registration.url, 20, 3)  # warm-up: connections, caches
        result = await asyncio.to_thread(load, registration.url, rate, seconds)
    finally:
        registration.stop()
        await stack.drop()
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
        f"Load generator: bench/load.py, open loop (fixed send schedule), own process; {result}"
    )
    print(result)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--seconds", type=float, default=30)
    args = parser.parse_args()
    write_section(asyncio.run(run(args.rate, args.seconds)))


if __name__ == "__main__":
    main()
