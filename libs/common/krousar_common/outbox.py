"""Transactional outbox: ``enqueue`` inside the caller's transaction, ``OutboxRelay`` publishes.

The relay holds a PostgreSQL advisory lock so that one process at a time publishes a database's
outbox: with several replicas of a service, rows still leave in id order, so events of one key
keep their order on their partition. It wakes on NOTIFY (sent at commit) and polls as a fallback.

It publishes in batches: the oldest rows are cut into one record batch per partition (in id
order within it, the partition chosen from the key as Kafka's default partitioner does), the
batches are handed to the idempotent producer together, and the rows are deleted once the broker
has acknowledged every batch (acks=all): every row in the table is one still to publish. A
failure deletes nothing: the rows are sent again, and the producer's idempotence, then the
consumers' inbox, make the repeat harmless. (Deleting a sent row writes no new row version and
no index entry, where stamping it sent rewrote the row and its indexes.)

The outbox table is the relay's first ``Source``. A service whose state already holds its events
in order may give the relay another source instead of copying them into the outbox: payments'
instructed lines are one (``payments.instruction``), 700,000 events a national run.
"""

import asyncio
import contextlib
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

import asyncpg
import numpy as np
import orjson
import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError, OutOfOrderSequenceNumber
from aiokafka.producer.message_accumulator import BatchBuilder

from krousar_common import metrics
from krousar_common.events import Envelope
from krousar_common.logging import describe_error

log = structlog.get_logger("krousar.outbox")
CHANNEL = "krousar_outbox"
RELAY_LOCK_ID = 7_245_002
BATCH = 10_000  # rows per round: a national payment run leaves 700,000 in seconds
ROUNDS = 10  # rounds of one source before the others have their turn
LINGER_SECONDS = 0.02


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


def json_members(values: dict[str, Any]) -> str:
    """``values`` as the members of a JSON object, without its braces: what every event of a bulk
    statement shares, for PostgreSQL to write each envelope by putting the row's own values
    around it (json_build_object costs twice as much)."""
    return orjson.dumps(values).decode()[1:-1]


async def notify(conn: asyncpg.Connection) -> None:
    """Wake the relay at commit: for rows a caller wrote to the outbox with its own SQL."""
    await conn.execute("SELECT pg_notify($1, '')", CHANNEL)


async def backlog(conn: asyncpg.Connection) -> tuple[int, float]:
    """(unsent rows, age in seconds of the oldest unsent row)."""
    row = await conn.fetchrow("SELECT count(*) AS n, min(created_at) AS oldest FROM outbox")
    age = (datetime.now(UTC) - row["oldest"]).total_seconds() if row["oldest"] else 0.0
    return row["n"], age


class Source(Protocol):
    """Where events wait for the relay, committed with the state change they tell of."""

    async def take(
        self, conn: asyncpg.Connection, limit: int, after: Mapping[str, Any] | None = None
    ) -> Sequence[Mapping[str, Any]]:
        """The oldest ``limit`` events at most (those after ``after``, a row it gave, when it is
        given: [] if it can't tell), in publishing order: rows with ``topic``, ``key``,
        ``event_type`` and ``payload`` (the same payload, event id included, each time it is taken)."""
        ...

    async def sent(self, conn: asyncpg.Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        """The broker has acknowledged ``rows`` (what ``take`` gave): never give them again."""
        ...

    async def backlog(self, conn: asyncpg.Connection) -> tuple[int, float]:
        """(events waiting, age in seconds of the oldest)."""
        ...


class OutboxTable:
    """The outbox table: rows ``enqueue`` wrote, deleted once sent."""

    async def take(
        self, conn: asyncpg.Connection, limit: int, after: Mapping[str, Any] | None = None
    ) -> Sequence[Mapping[str, Any]]:
        if after is not None:
            # A transaction may commit its rows after rows with higher ids were read: only a read
            # from the oldest row sends a key's events in order.
            return []
        return await conn.fetch(
            "SELECT id, topic, key, event_type, payload FROM outbox ORDER BY id LIMIT $1", limit
        )

    async def sent(self, conn: asyncpg.Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        await conn.execute("DELETE FROM outbox WHERE id = ANY($1::bigint[])", [r["id"] for r in rows])

    async def backlog(self, conn: asyncpg.Connection) -> tuple[int, float]:
        return await backlog(conn)


class OutboxRelay:
    """Publishes the ``sources`` (the outbox table unless told) with a producer of its own, made by
    ``make_producer``: started by the relay's first round, stopped (flushed) when it ends, and
    replaced when its idempotent sequence breaks."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        make_producer: Callable[[], AIOKafkaProducer],
        *,
        service: str,
        poll_seconds: float = 1.0,
        sources: Sequence[Source] = (OutboxTable(),),
    ) -> None:
        self.pool = pool
        self.make_producer = make_producer
        self.sources = sources
        self.producer: AIOKafkaProducer | None = None
        self.service = service
        self.poll_seconds = poll_seconds
        self._wake = asyncio.Event()
        self._stopping = False

    async def run(self) -> None:
        try:
            while not self._stopping:
                try:
                    await self._lead()
                except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                    log.warning("outbox.leadership_lost", error=describe_error(exc)[:500])
                    await asyncio.sleep(self.poll_seconds)
        finally:
            await self._drop_producer()

    async def _lead(self) -> None:
        """Publish while this process holds the lock. The lock lives as long as the connection that
        took it: once that connection is gone another replica may lead, so this one stops."""
        async with self.pool.acquire() as lock_conn:
            await self._wait_for_leadership(lock_conn)
            await lock_conn.add_listener(CHANNEL, self._on_notify)
            try:
                await self._publish_loop(lock_conn)
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

    async def _publish_loop(self, lock_conn: asyncpg.Connection) -> None:
        while not self._stopping:
            if lock_conn.is_closed():
                log.warning("outbox.leadership_lost", error="the lock's connection closed")
                return
            try:
                if self.producer is None:  # the first round, or the last one's producer was dropped
                    self.producer = await self._start_producer()
                published = await self.publish_batch(self.producer)
            except OutOfOrderSequenceNumber as exc:
                # aiokafka's idempotent producer numbers a batch when it first drains it, yet fails
                # it unsent once it has waited out request_timeout_ms for a partition without a
                # leader (the broker away that long, or starting again): the broker then refuses
                # every later batch of that partition as out of order, for ever. A new producer (a
                # new producer id, sequences from 0) sends the rows again; inboxes drop repeats.
                log.warning("outbox.producer_renewed", error=describe_error(exc)[:500])
                await self._drop_producer()
                continue
            except (OSError, KafkaError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                # The broker away, a topic not created yet, a delivery timed out: nothing was
                # deleted, the next round sends the rows again. The relay must never end here.
                log.warning("outbox.publish_failed", error=describe_error(exc)[:500])
                await asyncio.sleep(self.poll_seconds)
                continue
            if published < BATCH:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.poll_seconds)
                # As a producer's linger: the commits of the next moment join this round, where at
                # 200 registrations/s each woke a round (a read and a delete) of its own.
                await asyncio.sleep(LINGER_SECONDS)

    async def _start_producer(self) -> AIOKafkaProducer:
        producer = self.make_producer()
        try:
            await producer.start()
        except KafkaError:
            await producer.stop()
            raise
        return producer

    async def _drop_producer(self) -> None:
        producer, self.producer = self.producer, None
        if producer is not None:
            with contextlib.suppress(KafkaError):
                await producer.stop()

    async def publish_batch(self, producer: AIOKafkaProducer) -> int:
        """Publish the waiting events of each source in turn; how many, of the source that had
        the most in its last round (a round is full at ``BATCH``)."""
        most = 0
        async with self.pool.acquire() as conn:
            for source in self.sources:
                most = max(most, await self._publish_rounds(producer, conn, source))
        return most

    async def _publish_rounds(
        self, producer: AIOKafkaProducer, conn: asyncpg.Connection, source: Source
    ) -> int:
        """Up to ``ROUNDS`` rounds of the source, the next one read while the broker acknowledges
        the last: a round is sent once the one before it is acknowledged and marked sent, so a
        failure leaves unmarked only rows the next round sends again, in order. How many events
        the last round had."""
        rows = await source.take(conn, BATCH)
        for _ in range(ROUNDS):
            if not rows:
                return 0
            acknowledged = await self._send(producer, rows)
            reading = asyncio.ensure_future(source.take(conn, BATCH, after=rows[-1]))
            try:
                await acknowledged
            finally:
                following = await reading  # the connection is free again, whatever happened
            await source.sent(conn, rows)
            published = Counter((r["topic"], r["event_type"]) for r in rows)
            for (topic, event_type), count in published.items():
                metrics.EVENTS_PUBLISHED.labels(self.service, topic, event_type).inc(count)
            if len(rows) < BATCH or not following:
                return len(rows)
            rows = following
        return BATCH

    async def backlog(self) -> tuple[int, float]:
        """(events waiting in every source, age in seconds of the oldest)."""
        async with self.pool.acquire() as conn:
            backlogs = [await source.backlog(conn) for source in self.sources]
        return sum(rows for rows, _ in backlogs), max(age for _, age in backlogs)

    async def _send(
        self, producer: AIOKafkaProducer, rows: Sequence[Mapping[str, Any]]
    ) -> Awaitable[list[Any]]:
        """Hand the rows to the producer as record batches, one partition's rows in id order;
        what to await for the broker's acknowledgement of every batch."""
        partitions: dict[str, list[int]] = {}
        batches: dict[tuple[str, int], BatchBuilder] = {}
        sent: list[asyncio.Future] = []

        async def submit(tp: tuple[str, int]) -> None:
            batch = batches.pop(tp)
            batch.close()  # nothing else joins it: the batch is exactly these rows, in this order
            sent.append(await producer.send_batch(batch, tp[0], partition=tp[1]))

        keys = [row["key"].encode() for row in rows]
        for row, key, hashed in zip(rows, keys, murmur2(keys), strict=True):
            topic = row["topic"]
            if topic not in partitions:
                partitions[topic] = sorted(await producer.partitions_for(topic))
            choices = partitions[topic]
            # Kafka's default partitioner (murmur2 of the key), as producer.send would choose.
            tp = (topic, choices[(hashed & 0x7FFFFFFF) % len(choices)])
            batch = batches.get(tp) or batches.setdefault(tp, producer.create_batch())
            if batch.append(key=key, value=row["payload"], timestamp=None) is None:  # full
                await submit(tp)
                # A new batch always takes its first record, however large.
                batches.setdefault(tp, producer.create_batch()).append(
                    key=key, value=row["payload"], timestamp=None
                )
        for tp in list(batches):
            await submit(tp)
        return asyncio.gather(*sent)


_M = np.uint32(0x5BD1E995)


def murmur2(keys: Sequence[bytes]) -> list[int]:
    """aiokafka's ``murmur2`` (Kafka's default partitioner's hash) of every key, computed for the
    keys of one length at once with numpy: the relay hashes every key it publishes, and one key at
    a time in Python took a quarter of a national run's publishing."""
    hashes = [0] * len(keys)
    by_length: dict[int, list[int]] = {}
    for i, key in enumerate(keys):
        by_length.setdefault(len(key), []).append(i)
    for length, indexes in by_length.items():
        data = np.frombuffer(b"".join(keys[i] for i in indexes), dtype=np.uint8).reshape(len(indexes), length)
        for i, value in zip(indexes, _murmur2_of_length(data, length).tolist(), strict=True):
            hashes[i] = value
    return hashes


def _murmur2_of_length(data: np.ndarray, length: int) -> np.ndarray:
    """The hashes of the rows of ``data``, keys of ``length`` bytes (uint32 arithmetic wraps as the
    hash's does)."""
    h = np.full(len(data), 0x9747B28C ^ length, dtype=np.uint32)
    words = np.ascontiguousarray(data[:, : length & ~3]).view("<u4")
    for column in range(length >> 2):
        k = words[:, column] * _M
        k = (k ^ (k >> 24)) * _M
        h = (h * _M) ^ k
    tail, rest = length & ~3, length & 3
    if rest:
        if rest == 3:
            h ^= data[:, tail + 2].astype(np.uint32) << 16
        if rest >= 2:
            h ^= data[:, tail + 1].astype(np.uint32) << 8
        h = (h ^ data[:, tail].astype(np.uint32)) * _M
    h = (h ^ (h >> 13)) * _M
    return h ^ (h >> 15)
