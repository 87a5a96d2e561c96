"""The physical floor each stage is compared with: what PostgreSQL COPY and Kafka's own producer
perf tool do with the same rows and the same number of events on this machine."""

import re
import subprocess
import time

import asyncpg
from aiokafka import AIOKafkaConsumer

from bench.common import ROOT

KAFKA_LIB = ROOT / ".cache" / "kafka" / "lib"


async def copy_floor(conn: asyncpg.Connection, tables: list[str]) -> tuple[float, int]:
    """Seconds to COPY every row of ``tables`` into empty look-alike tables (same indexes)."""
    seconds, rows = 0.0, 0
    for table in tables:
        records = await conn.fetch(f"SELECT * FROM {table}")
        columns = list(records[0].keys()) if records else []
        await conn.execute(
            f"DROP TABLE IF EXISTS floor_{table}; CREATE TABLE floor_{table} (LIKE {table} INCLUDING ALL)"
        )
        started = time.perf_counter()
        await conn.copy_records_to_table(
            f"floor_{table}", records=[tuple(r) for r in records], columns=columns
        )
        seconds += time.perf_counter() - started
        rows += len(records)
        await conn.execute(f"DROP TABLE floor_{table}")
    return seconds, rows


def kafka_producer_floor(bootstrap: str, topic: str, records: int, record_size: int) -> tuple[float, float]:
    """Run org.apache.kafka.tools.ProducerPerformance (acks=all, idempotent); (seconds, records/s)."""
    command = [
        "java",
        "-Xmx512m",
        "-cp",
        f"{KAFKA_LIB}/*",
        "org.apache.kafka.tools.ProducerPerformance",
        "--topic",
        topic,
        "--num-records",
        str(records),
        "--record-size",
        str(record_size),
        "--throughput",
        "-1",
        "--producer-props",
        f"bootstrap.servers={bootstrap}",
        "acks=all",
        "enable.idempotence=true",
        "linger.ms=5",
        "batch.size=262144",
    ]
    started = time.perf_counter()
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    seconds = time.perf_counter() - started
    match = re.findall(r"(\d+) records sent, ([\d.]+) records/sec", output)
    rate = float(match[-1][1]) if match else records / seconds
    return records / rate, rate


async def average_record_size(bootstrap: str, topic: str, sample: int = 1000) -> int:
    """Mean size in bytes of the first ``sample`` records of ``topic`` (the outbox keeps no sent rows)."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    try:
        sizes: list[int] = []
        while len(sizes) < sample:
            batches = await consumer.getmany(timeout_ms=2000, max_records=sample)
            if not batches:
                break
            sizes += [len(r.value) for records in batches.values() for r in records]
    finally:
        await consumer.stop()
    return round(sum(sizes) / len(sizes))
