"""An open-loop load generator: sends requests at a fixed rate, whatever the latency, and reports
latency percentiles. Run as its own process so the server under test has its own CPU.

    python -m bench.load --url http://127.0.0.1:8001 --rate 200 --seconds 30

Plain HTTP/1.1 over keep-alive connections, parsed with httptools: a few tens of microseconds of
CPU per request, where an httpx client spends about a millisecond and would take a good part of
a core away from the server on a 2-core machine. A request that finds every open connection busy
opens one more, so a slow server never slows the send schedule down.
"""

import argparse
import asyncio
import gc
import math
import random
import statistics
import subprocess
import sys
import time
from datetime import date, timedelta
from functools import cache
from urllib.parse import urlsplit

import httptools
import orjson
import uvloop
from krousar_common.testing import bearer
from registration.synthetic import FULL_NAMES, villages_by_province

from bench.common import ROOT

ANSWERS = {
    "roof": "THATCH",
    "walls": "THATCH_OR_BAMBOO",
    "floor_area_m2": 12,
    "house_condition": "POOR",
    "tenure": "INFORMAL",
    "earners": 0,
    "transport": "NONE",
    "valuables": 0,
    "food_shortage_months": 4,
    "shock_12m": True,
}
MAX_CONNECTIONS = 500
HEADS_BORN_FROM = date(1960, 1, 1)


@cache
def villages() -> list[str]:
    """The villages whose questionnaire ``ANSWERS`` answers (Phnom Penh's): registrations come from
    many villages at once, each reserving a card number of its own village's sequence."""
    by_province = villages_by_province()
    questionnaire = dict(by_province["12"])["12010101"]
    return [code for codes in by_province.values() for code, asked in codes if asked == questionnaire]


def household(n: int) -> dict:
    """Household ``n``: each in another village, its head with a name and birth day of her own
    (the registry looks for a head of the same name, birth day and village: a possible duplicate)."""
    codes = villages()
    head_names = [name for names in FULL_NAMES for name, _ in names["F"]]
    return {
        "village_code": codes[(n * 7919) % len(codes)],  # 7919 is prime: every village in turn
        "interviewed_on": "2025-03-01",
        "answers": ANSWERS,
        "members": [
            {
                "name_km": head_names[n % len(head_names)],
                "sex": "F",
                "date_of_birth": (HEADS_BORN_FROM + timedelta(days=n % 10_000)).isoformat(),
                "relationship": "HEAD",
                "national_id": f"{700_000_000 + n}",
            },
            {"name_km": "សុខ ដារ៉ា", "sex": "M", "date_of_birth": "2022-01-01", "relationship": "CHILD"},
            {"name_km": "សុខ ស្រី", "sex": "F", "date_of_birth": "1950-01-01", "relationship": "PARENT"},
        ],
    }


def request_bytes(host: str, path: str, headers: dict[str, str], body: bytes) -> bytes:
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class _Response:
    """httptools callbacks: the status, and whether the whole response has arrived."""

    def __init__(self) -> None:
        self.status = 0
        self.complete = False
        self.parser = httptools.HttpResponseParser(self)

    def on_status(self, _status: bytes) -> None:
        self.status = self.parser.get_status_code()

    def on_message_complete(self) -> None:
        self.complete = True


class StaleConnection(ConnectionError):
    """Closed by the server while idle (keep-alive timeout): the request never reached it."""


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def send(self, request: bytes) -> int:
        """The response's status code after reading all of it."""
        self.writer.write(request)
        response = _Response()
        received = False
        while not response.complete:
            chunk = await self.reader.read(65536)
            if not chunk:
                raise (ConnectionError if received else StaleConnection)("the server closed the connection")
            received = True
            response.parser.feed_data(chunk)
        return response.status


class Pool:
    """Idle keep-alive connections; a request without one opens a new connection."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.idle: list[Connection] = []
        self.opened = 0

    async def send(self, request: bytes) -> int:
        connection = self.idle.pop() if self.idle else await self._open()
        try:
            status = await connection.send(request)
        except StaleConnection:
            connection = await self._open()
            status = await connection.send(request)
        self.idle.append(connection)
        return status

    async def _open(self) -> Connection:
        if self.opened >= MAX_CONNECTIONS:
            raise ConnectionError(f"more than {MAX_CONNECTIONS} requests in flight")
        self.opened += 1
        return Connection(*await asyncio.open_connection(self.host, self.port))

    def close(self) -> None:
        for connection in self.idle:
            connection.writer.close()


async def one(pool: Pool, request: bytes, latencies: list[float], failures: list[int]) -> None:
    """Send ``request``; its latency goes where ``latencies`` (its send second's list) says."""
    started = time.perf_counter()
    try:
        status = await pool.send(request)
    except (OSError, ConnectionError, httptools.HttpParserError):
        status = 0
    latencies.append(time.perf_counter() - started)
    if status != 201:
        failures.append(status)


async def run(url: str, rate: float, seconds: float, offset: int) -> dict:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    headers = {**bearer("load", "registry_admin"), "Content-Type": "application/json"}
    total = int(rate * seconds)
    # Built before the clock starts: the schedule then only writes bytes.
    requests = [
        request_bytes(f"{host}:{port}", "/v1/households", headers, orjson.dumps(household(offset + i)))
        for i in range(total)
    ]
    pool = Pool(host, port)
    by_second: list[list[float]] = [[] for _ in range(math.ceil(seconds))]
    failures: list[int] = []
    tasks = []
    # No cyclic collection while the clock runs: a full one over the requests and tasks held here
    # stopped this process for 60-130 ms, delaying sends and inflating every latency in flight
    # (the p99 measured the load generator). A run's garbage fits in memory.
    gc.collect()
    gc.freeze()
    gc.disable()
    cpu_before = time.process_time()
    started_at, start = time.time(), time.perf_counter()
    for i, request in enumerate(requests):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(pool, request, by_second[int(i / rate)], failures)))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - start
    gc.enable()
    cpu_ms = (time.process_time() - cpu_before) * 1000
    pool.close()
    latencies = [latency for second in by_second for latency in second]
    cuts = statistics.quantiles(latencies, n=100)
    return {
        "requests": total,
        "seconds": round(elapsed, 1),
        "achieved_rps": round(total / elapsed, 1),
        "p50_ms": round(cuts[49] * 1000, 1),
        "p99_ms": round(cuts[98] * 1000, 1),
        "max_ms": round(max(latencies) * 1000, 1),
        "failures": len(failures),
        "connections": pool.opened,
        "cpu_ms_per_request": round(cpu_ms / total, 3),
        # When each second of the schedule began, and its requests' latencies: what a machine
        # shared with others did to which second can be told apart (bench_api).
        "started_at": started_at,
        "latencies_ms_by_second": [[round(v * 1000, 2) for v in second] for second in by_second],
    }


def generate(url: str, rate: float, seconds: float) -> dict:
    """Run the load generator in a process of its own; its result (``run``)."""
    command = [sys.executable, "-m", "bench.load", "--url", url, "--rate", str(rate)]
    command += ["--seconds", str(seconds)]
    output = subprocess.run(command, capture_output=True, text=True, check=True, cwd=ROOT).stdout
    return orjson.loads(output.strip().splitlines()[-1])


def summary(result: dict) -> dict:
    """The result without its per-second detail (for a report's notes)."""
    return {k: v for k, v in result.items() if k not in ("started_at", "latencies_ms_by_second")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--offset", type=int, default=random.randrange(10_000_000))
    args = parser.parse_args()
    result = uvloop.run(run(args.url, args.rate, args.seconds, args.offset))
    print(orjson.dumps(result).decode())


if __name__ == "__main__":
    main()
