"""The outbox relay, driven directly on a database and a topic of its own: events of one key leave
in the order they were enqueued (across batches and a relay crash), the relay publishes without a
NOTIFY (polling), a row is marked sent only once the broker has acknowledged it, and no Kafka
error (here: a topic created late) ends the relay."""

import asyncio
import contextlib
import os
import random
import shutil
import socket
import subprocess
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import asyncpg
import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.partitioner import DefaultPartitioner
from krousar_common import db, kafka, outbox
from krousar_common.events import Envelope
from krousar_common.testing import ROOT, TestStack, wait_for
from structlog.testing import capture_logs

PARTITIONS = 6
EVENTS = 1200
KAFKA_SH = ROOT / "deploy" / "local" / "kafka.sh"


@dataclass
class OutboxUnderTest:
    """A database with the common migrations, and a topic nobody else reads."""

    stack: TestStack
    name: str
    bootstrap: str
    topic: str = field(init=False)

    def __post_init__(self) -> None:
        self.topic = self.stack.topic(f"outbox-{self.name}.v1")

    @property
    def database_url(self) -> str:
        return f"{self.stack.pg_url}/{self.stack.database(f'outbox_{self.name}')}"

    async def create(self) -> None:
        await db.migrate(self.stack.pg_url, self.stack.database(f"outbox_{self.name}"))
        await kafka.create_topics(self.bootstrap, [self.topic], partitions=PARTITIONS, replication=1)

    async def delete_topic(self) -> None:
        await kafka.delete_topics(self.bootstrap, [self.topic])

    async def enqueue(self, conn: asyncpg.Connection, key: str, seq: int) -> Envelope:
        envelope = event(key, seq)
        async with conn.transaction():
            await outbox.enqueue(conn, topic=self.topic, envelope=envelope)
        return envelope

    async def insert_without_notify(self, conn: asyncpg.Connection, key: str, seq: int) -> Envelope:
        """A row as a service's own SQL writes one when it forgets ``outbox.notify``."""
        envelope = event(key, seq)
        await conn.execute(
            "INSERT INTO outbox (event_id, topic, key, event_type, payload) VALUES ($1, $2, $3, $4, $5)",
            envelope.id,
            self.topic,
            key,
            envelope.type,
            envelope.to_bytes(),
        )
        return envelope

    async def read(self) -> list[ConsumerRecord]:
        """Every record on the topic so far, each partition in offset order."""
        partitions = [TopicPartition(self.topic, p) for p in range(PARTITIONS)]
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False)
        await consumer.start()
        try:
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            ends = await consumer.end_offsets(partitions)
            records: list[ConsumerRecord] = []
            while [tp for tp, end in ends.items() if await consumer.position(tp) < end]:
                for batch in (await consumer.getmany(timeout_ms=500)).values():
                    records += batch
            return records
        finally:
            await consumer.stop()


def event(key: str, seq: int) -> Envelope:
    return Envelope(
        source="krousar/tests", type="krousar.OutboxTested", subject=key, correlation_id=key,
        schema_version=1, data={"seq": seq},
    )  # fmt: skip


def seq_of(record: ConsumerRecord) -> int:
    return orjson.loads(record.value)["data"]["seq"]


@dataclass
class RunningRelay:
    """An OutboxRelay with its own pool (and its producer), as one service process holds them."""

    relay: outbox.OutboxRelay
    pool: asyncpg.Pool
    task: asyncio.Task

    @classmethod
    async def start(
        cls, target: OutboxUnderTest, *, poll_seconds: float = 0.5, **producer_options: int
    ) -> "RunningRelay":
        pool = await db.create_pool(target.database_url, min_size=1, max_size=3)

        def make_producer() -> AIOKafkaProducer:
            return AIOKafkaProducer(
                bootstrap_servers=target.bootstrap, enable_idempotence=True, acks="all", **producer_options
            )

        relay = outbox.OutboxRelay(pool, make_producer, service="outbox-test", poll_seconds=poll_seconds)
        return cls(relay, pool, asyncio.create_task(relay.run()))

    async def stop(self) -> None:
        self.relay.stop()
        await asyncio.wait_for(self.task, 60)
        await self.pool.close()

    async def crash(self) -> None:
        """Gone at whatever point it had reached: maybe published, not yet marked sent."""
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)
        await self.pool.close()


async def unsent(conn: asyncpg.Connection) -> int:
    """Rows still to publish, as the outbox itself counts them (marked sent or deleted: its choice)."""
    rows, _ = await outbox.backlog(conn)
    return rows


@pytest.fixture
async def target(stack: TestStack) -> AsyncIterator[OutboxUnderTest]:
    under_test = OutboxUnderTest(stack, uuid.uuid4().hex[:6], stack.kafka_bootstrap)
    await under_test.create()
    yield under_test
    await under_test.delete_topic()


async def test_events_of_a_key_leave_in_enqueue_order_across_batches_and_a_crash(
    target: OutboxUnderTest, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(outbox, "BATCH", 40)  # many rounds, each cut into batches per partition
    keys = [f"household-{i}" for i in range(30)]
    conn = await asyncpg.connect(target.database_url)
    try:
        enqueued = [await target.enqueue(conn, keys[i % len(keys)], i) for i in range(EVENTS)]
        # Record batches of about four events: a round sends several batches to each partition.
        first = await RunningRelay.start(target, max_batch_size=1024)
        await wait_for(lambda: _unsent_at_most(conn, EVENTS - 200), interval=0.01, what="a first relay round")
        await first.crash()
        assert await unsent(conn) > 0, "the crash came too late to test anything"
        second = await RunningRelay.start(target, max_batch_size=1024)
        try:
            await wait_for(lambda: _all_sent(conn), timeout=60, what="the second relay to publish the rest")
        finally:
            await second.stop()
    finally:
        await conn.close()

    records = await target.read()
    partitioner = DefaultPartitioner()
    for key in keys:
        of_key = [r for r in records if r.key == key.encode()]
        expected = [seq_of_envelope(e) for e in enqueued if e.subject == key]
        # A round the crash cut short is published again: repeats are allowed, reordering is not.
        assert list(dict.fromkeys(seq_of(r) for r in of_key)) == expected, key
        assert {r.partition for r in of_key} == {
            partitioner(key.encode(), list(range(PARTITIONS)), list(range(PARTITIONS)))
        }, f"{key} not on the partition producer.send would choose"


def seq_of_envelope(envelope: Envelope) -> int:
    return envelope.data["seq"]


async def _unsent_at_most(conn: asyncpg.Connection, count: int) -> bool:
    return await unsent(conn) <= count


async def _all_sent(conn: asyncpg.Connection) -> bool:
    return await unsent(conn) == 0


async def _lock_holder(conn: asyncpg.Connection) -> int | None:
    """The backend pid holding the relay's lock in this database."""
    return await conn.fetchval(
        "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND objid = $1 AND granted"
        " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
        outbox.RELAY_LOCK_ID,
    )


async def test_the_relay_polls_when_no_notify_arrives(target: OutboxUnderTest, stack: TestStack) -> None:
    relay = await RunningRelay.start(target, poll_seconds=0.5)
    conn = await asyncpg.connect(target.database_url)
    try:
        await target.enqueue(conn, "woken", 0)
        await wait_for(lambda: _all_sent(conn), what="the notified row published")

        # The relay now waits: only its poll can find a row written without NOTIFY.
        silent = await target.insert_without_notify(conn, "silent", 1)
        await wait_for(lambda: _all_sent(conn), what="the row written without NOTIFY published")

        # Its LISTEN connection (the one holding the leader lock) dropped: the lock went with it, so
        # it leads again only once it holds the lock on a new connection, then publishes.
        listener = await _lock_holder(conn)
        assert await conn.fetchval("SELECT pg_terminate_backend($1)", listener)
        orphaned = await target.enqueue(conn, "orphaned", 2)
        await wait_for(lambda: _all_sent(conn), what="a row published after the LISTEN connection dropped")
        assert await _lock_holder(conn) not in (None, listener)
    finally:
        await conn.close()
        await relay.stop()

    published = {r.key.decode(): seq_of(r) for r in await target.read()}
    assert published == {"woken": 0, "silent": seq_of_envelope(silent), "orphaned": seq_of_envelope(orphaned)}


# --- a broker of its own, stopped while rows wait --------------------------------------------------


def free_port_pair() -> int:
    """Two free ports, BASE for the broker and BASE+1 for its controller, below the kernel's
    ephemeral range (32768-60999), where any outgoing connection could take BASE+1 meanwhile."""
    while True:
        port = random.randrange(20_000, 29_000, 2)
        with socket.socket() as broker, socket.socket() as controller, contextlib.suppress(OSError):
            broker.bind(("127.0.0.1", port))
            controller.bind(("127.0.0.1", port + 1))
            return port


class OwnBroker:
    def __init__(self) -> None:
        self.port = free_port_pair()
        self.env = {**os.environ, "KAFKA_NODES": "1", "KAFKA_BASE_PORT": str(self.port)}

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def run(self, command: str) -> None:
        done = subprocess.run(
            ["bash", str(KAFKA_SH), command], env=self.env, capture_output=True, text=True, timeout=180
        )
        assert done.returncode == 0, f"kafka.sh {command} failed: {done.stdout[-2000:]}{done.stderr[-2000:]}"

    def remove_data(self) -> None:
        shutil.rmtree(ROOT / ".local" / f"kafka-1-{self.port}", ignore_errors=True)


@pytest.fixture
async def own_broker() -> AsyncIterator[OwnBroker]:
    broker = OwnBroker()
    try:  # a start that fails half-way leaves a pid file: stopped all the same
        await asyncio.to_thread(broker.run, "start")
        yield broker
    finally:
        await asyncio.to_thread(broker.run, "stop")
        broker.remove_data()


async def test_rows_are_marked_sent_only_once_the_broker_acknowledged(
    stack: TestStack, own_broker: OwnBroker
) -> None:
    target = OutboxUnderTest(stack, uuid.uuid4().hex[:6], own_broker.bootstrap)
    await target.create()
    relay = await RunningRelay.start(target, poll_seconds=0.2)
    conn = await asyncpg.connect(target.database_url)
    try:
        before = [await target.enqueue(conn, f"before-{i}", i) for i in range(5)]
        await wait_for(lambda: _all_sent(conn), what="rows published while the broker is up")

        await asyncio.to_thread(own_broker.run, "stop")
        during = [await target.enqueue(conn, f"during-{i}", 100 + i) for i in range(5)]
        # The broker stays away for some 15 of the relay's polls: none of them may count a row sent.
        some_sent = len(during) - 1
        with pytest.raises(AssertionError, match="timed out"):
            await wait_for(lambda: _unsent_at_most(conn, some_sent), timeout=3, what="a row sent unacked")

        await asyncio.to_thread(own_broker.run, "start")
        await wait_for(lambda: _all_sent(conn), timeout=90, interval=0.5, what="the held rows drained")
    finally:
        await asyncio.to_thread(own_broker.run, "start")  # (running already, unless a check failed)
        await conn.close()
        await relay.stop()  # the producer flushes what it holds: it needs the broker

    published = {seq_of(r) for r in await target.read()}
    assert published == {seq_of_envelope(e) for e in before + during}


async def test_the_relay_outlives_a_topic_created_late(stack: TestStack) -> None:
    target = OutboxUnderTest(stack, uuid.uuid4().hex[:6], stack.kafka_bootstrap)
    await db.migrate(stack.pg_url, stack.database(f"outbox_{target.name}"))  # the topic: not yet
    # A metadata wait of 5 s, not the default 40 s: the round must fail within the wait below.
    relay = await RunningRelay.start(target, poll_seconds=0.2, request_timeout_ms=5000)
    conn = await asyncpg.connect(target.database_url)
    try:
        with capture_logs() as logs:
            await target.enqueue(conn, "early", 0)

            async def failed_or_ended() -> bool:
                return relay.task.done() or any(e["event"] == "outbox.publish_failed" for e in logs)

            await wait_for(failed_or_ended, what="the first round to fail on the unknown topic")
        assert not relay.task.done(), f"the relay ended: {relay.task.exception()!r}"
        await target.create()
        await wait_for(lambda: _all_sent(conn), timeout=30, what="the row published once the topic exists")
    finally:
        await conn.close()
        await relay.crash()
        await target.delete_topic()
