"""Transactional outbox: ``enqueue`` inside the caller's transaction, ``OutboxRelay`` publishes.

The relay holds a PostgreSQL advisory lock so that one process at a time publishes a database's
outbox: with several replicas of a service, rows still leave in id order, so events of one key
keep their order on their partition. It wakes on NOTIFY (sent at commit) and polls as a fallback.
"""

import asyncio
import contextlib
from datetime import UTC, datetime

import asyncpg
import structlog
from aiokafka import AIOKafkaProducer

from krousar_common import metrics
from krousar_common.events import Envelope

log = structlog.get_logger("krousar.outbox")
CHANNEL = "krousar_outbox"
RELAY_LOCK_ID = 7_245_002
BATCH = 2000


async def enqueue(conn: asyncpg.Connection, *, topic: str, envelope: Envelope) -> None:
    """Write one event to the outbox. Must run inside the transaction of the state change."""
    await conn.execute(
        "INSERT INTO outbox (event_id, topic, key, event_type, payload) VALUES ($1, $2, $3, $4, $5)",
        envelope.id,
        topic,
        envelope.subject,
        envelope.type,
        envelope.to_bytes(),
    )
    await conn.execute("SELECT pg_notify($1, '')", CHANNEL)


async def enqueue_many(conn: asyncpg.Connection, rows: list[tuple[str, Envelope]]) -> None:
    """Bulk form of ``enqueue`` for imports and runs: COPY instead of one INSERT per event."""
    records = [(env.id, topic, env.subject, env.type, env.to_bytes()) for topic, env in rows]
    await conn.copy_records_to_table(
        "outbox", records=records, columns=["event_id", "topic", "key", "event_type", "payload"]
    )
    await conn.execute("SELECT pg_notify($1, '')", CHANNEL)


async def backlog(conn: asyncpg.Connection) -> tuple[int, float]:
    """(unsent rows, age in seconds of the oldest unsent row)."""
    row = await conn.fetchrow(
        "SELECT count(*) AS n, min(created_at) AS oldest FROM outbox WHERE sent_at IS NULL"
    )
    age = (datetime.now(UTC) - row["oldest"]).total_seconds() if row["oldest"] else 0.0
    return row["n"], age


class OutboxRelay:
    def __init__(
        self, pool: asyncpg.Pool, producer: AIOKafkaProducer, *, service: str, poll_seconds: float = 1.0
    ) -> None:
        self.pool = pool
        self.producer = producer
        self.service = service
        self.poll_seconds = poll_seconds
        self._wake = asyncio.Event()
        self._stopping = False

    async def run(self) -> None:
        async with self.pool.acquire() as lock_conn:
            await self._wait_for_leadership(lock_conn)
            await lock_conn.add_listener(CHANNEL, self._on_notify)
            try:
                await self._publish_loop()
            finally:
                with contextlib.suppress(asyncpg.InterfaceError, asyncpg.PostgresConnectionError):
                    await lock_conn.remove_listener(CHANNEL, self._on_notify)
                    await lock_conn.execute("SELECT pg_advisory_unlock($1)", RELAY_LOCK_ID)

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    def _on_notify(self, *_: object) -> None:
        self._wake.set()

    async def _wait_for_leadership(self, conn: asyncpg.Connection) -> None:
        while not await conn.fetchval("SELECT pg_try_advisory_lock($1)", RELAY_LOCK_ID):
            await asyncio.sleep(self.poll_seconds)

    async def _publish_loop(self) -> None:
        while not self._stopping:
            try:
                published = await self.publish_batch()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("outbox.publish_failed", error=str(exc))
                await asyncio.sleep(self.poll_seconds)
                continue
            if published < BATCH:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.poll_seconds)

    async def publish_batch(self) -> int:
        """Publish the oldest unsent rows; mark them sent once the broker acknowledged them all."""
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT id, topic, key, event_type, payload FROM outbox"
                " WHERE sent_at IS NULL ORDER BY id LIMIT $1",
                BATCH,
            )
            if not rows:
                return 0
            futures = [
                await self.producer.send(r["topic"], value=r["payload"], key=r["key"].encode()) for r in rows
            ]
            await asyncio.gather(*futures)
            await conn.execute(
                "UPDATE outbox SET sent_at = now() WHERE id = ANY($1::bigint[])", [r["id"] for r in rows]
            )
        for r in rows:
            metrics.EVENTS_PUBLISHED.labels(self.service, r["topic"], r["event_type"]).inc()
        return len(rows)
