"""Benchmark: the registration API under a steady load from a second process on loopback.

    python -m bench.bench_api --rate 100 --seconds 30

Goals: a steady 100 registrations/s, so that a registration's decision can be published within
1 s (issue 4); p99 under 50 ms at 200 registrations/s (issue 7). Besides latency, the report gives
the CPU each request costs the service, PostgreSQL and the load generator (on a shared 2-core
machine those are what other work cannot blur), and the latency of the seconds in which the
hypervisor took CPU time from the machine apart from the others.
"""

import argparse
import asyncio
import os
import statistics
import threading
import time
from pathlib import Path

from krousar_common.testing import ServiceProcess, TestStack

from bench import load
from bench.common import Report, Stage, cpu_jiffies, stolen_share, write_section

TICKS = os.sysconf("SC_CLK_TCK")
WARM_UP_SECONDS = 10
QUIET_STEAL = 0.05  # a second in which the hypervisor took less than this share of the CPU


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far (0 once it has gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS


class StealSampler:
    """The machine's CPU steal counters every half second, in a thread, while the load runs."""

    def __init__(self) -> None:
        self.samples: list[tuple[float, tuple[int, int]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "StealSampler":
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while True:
            self.samples.append((time.time(), cpu_jiffies()))
            if self._stop.wait(0.5):
                return

    def share(self, start: float, end: float) -> float:
        """The share of CPU time stolen between the samples around ``start`` and ``end``."""
        before = max((s for s in self.samples if s[0] <= start), default=self.samples[0])
        after = min((s for s in self.samples if s[0] >= end), default=self.samples[-1])
        return stolen_share(before[1], after[1])


def by_steal(result: dict, sampler: StealSampler) -> str:
    """p99 of the seconds the hypervisor took little of the machine, and of the others."""
    groups: dict[bool, list[list[float]]] = {True: [], False: []}  # quiet: the seconds' latencies
    for second, latencies in enumerate(result["latencies_ms_by_second"]):
        begin = result["started_at"] + second
        groups[sampler.share(begin, begin + 1) < QUIET_STEAL].append(latencies)
    parts = []
    for quiet, name in ((True, "under"), (False, "at or over")):
        latencies = [latency for second in groups[quiet] for latency in second]
        p99 = f"p99 {statistics.quantiles(latencies, n=100)[98]:.1f} ms" if len(latencies) > 1 else "no p99"
        parts.append(f"{len(groups[quiet])} s with steal {name} {QUIET_STEAL:.0%}: {p99}")
    return "; ".join(parts)


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
        await asyncio.to_thread(load.generate, registration.url, rate, WARM_UP_SECONDS)
        assert registration.process is not None
        pids = [registration.process.pid, *await postgres_pids(stack)]
        before, jiffies = {pid: cpu_seconds(pid) for pid in pids}, cpu_jiffies()
        with StealSampler() as sampler:
            result = await asyncio.to_thread(load.generate, registration.url, rate, seconds)
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
        f"Latency by the steal of each second of the send schedule: {by_steal(result, sampler)}."
        " The other tenants of the host take the machine's CPU by bursts; the p99 of a whole run is the"
        " p99 of its worst seconds."
    )
    report.notes.append(
        f"At {rate:.0f} requests/s the service and PostgreSQL need"
        f" {rate * (service_ms + postgres_ms) / 1000:.2f} of the machine's {os.cpu_count()} cores"
        " (the broker and the load generator share them too); failures are requests the load"
        f" generator could not send because {load.MAX_CONNECTIONS} were already waiting: the service fell"
        " behind."
    )
    report.notes.append(
        f"Load generator: bench/load.py, open loop (fixed send schedule), villages of Phnom Penh's"
        f" questionnaire in turn, own process, after {WARM_UP_SECONDS} s at the same rate;"
        f" {load.summary(result)}"
    )
    print(load.summary(result))
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
