"""An open-loop load generator: sends requests at a fixed rate, whatever the latency, and reports
latency percentiles. Run as its own process so the server under test has its own CPU.

    python -m bench.load --url http://127.0.0.1:8001 --rate 200 --seconds 30
"""

import argparse
import asyncio
import random
import statistics
import time

import httpx
import orjson
from krousar_common.testing import bearer

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


def household(n: int) -> dict:
    return {
        "village_code": "12010101",
        "interviewed_on": "2025-03-01",
        "answers": ANSWERS,
        "members": [
            {
                "name_km": "សុខ ចាន់",
                "sex": "F",
                "date_of_birth": "1980-05-01",
                "relationship": "HEAD",
                "national_id": f"{700_000_000 + n}",
            },
            {"name_km": "សុខ ដារ៉ា", "sex": "M", "date_of_birth": "2022-01-01", "relationship": "CHILD"},
            {"name_km": "សុខ ស្រី", "sex": "F", "date_of_birth": "1950-01-01", "relationship": "PARENT"},
        ],
    }


async def one(client: httpx.AsyncClient, n: int, latencies: list[float], failures: list[int]) -> None:
    started = time.perf_counter()
    try:
        response = await client.post("/v1/households", content=orjson.dumps(household(n)))
        status = response.status_code
    except httpx.HTTPError:
        status = 0
    latencies.append(time.perf_counter() - started)
    if status != 201:
        failures.append(status)


async def run(url: str, rate: float, seconds: float, offset: int) -> dict:
    headers = {**bearer("load", "registry_admin"), "Content-Type": "application/json"}
    latencies: list[float] = []
    failures: list[int] = []
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30, limits=limits) as client:
        tasks = []
        start = time.perf_counter()
        total = int(rate * seconds)
        for i in range(total):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(client, offset + i, latencies, failures)))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - start
    cuts = statistics.quantiles(latencies, n=100)
    return {
        "requests": total,
        "seconds": round(elapsed, 1),
        "achieved_rps": round(total / elapsed, 1),
        "p50_ms": round(cuts[49] * 1000, 1),
        "p99_ms": round(cuts[98] * 1000, 1),
        "max_ms": round(max(latencies) * 1000, 1),
        "failures": len(failures),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--offset", type=int, default=random.randrange(10_000_000))
    args = parser.parse_args()
    print(orjson.dumps(asyncio.run(run(args.url, args.rate, args.seconds, args.offset))).decode())


if __name__ == "__main__":
    main()
