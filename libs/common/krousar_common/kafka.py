"""Kafka plumbing: the idempotent producer, the admin helpers and the consumer runner.

The runner gives at-least-once delivery with an exactly-once *effect*: a batch of messages is
applied in one PostgreSQL transaction (each message in a savepoint, its id claimed in the inbox),
offsets are committed only after that transaction commits, and a message that can never be
processed goes to ``<topic>.dlq`` with the reason, so the partition keeps moving.
"""

import asyncio
import collections
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass

import asyncpg
import orjson
import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError
from pydantic import BaseModel

from krousar_common import inbox, metrics
from krousar_common.collector import collector_paused
from krousar_common.events import Envelope, InvalidEvent, decode
from krousar_common.logging import describe_error

log = structlog.get_logger("krousar.kafka")

Handler = Callable[[asyncpg.Connection, Envelope, BaseModel], Awaitable[None]]
# The type label of a consumed message that could not be decoded (its type may be anything).
UNKNOWN_TYPE = "unknown"
# What the database says of an event that can never be applied (not of the database being away).
POISON_ERRORS = (asyncpg.DataError, asyncpg.IntegrityConstraintViolationError)
Consumed = collections.Counter[tuple[str, str]]  # (event type, outcome) -> events
Poison = list[tuple[ConsumerRecord, str]]  # records and why each is poison


Decoded = tuple[ConsumerRecord, Envelope, BaseModel]


class PoisonInBatch(Exception):
    """A handler refused an event of the batch (its data, or the database for its data): the
    batch must be applied again one event at a time."""


def _log_poison(record: ConsumerRecord, reason: str) -> None:
    log.warning(
        "consumer.poison_message",
        reason=reason[:500],
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
    )


@contextlib.contextmanager
def _bound(record: ConsumerRecord, envelope: Envelope) -> Iterator[None]:
    """Log lines inside carry the record's place and the event's correlation id."""
    structlog.contextvars.bind_contextvars(
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        correlation_id=envelope.correlation_id,
    )
    try:
        yield
    finally:
        structlog.contextvars.unbind_contextvars("topic", "partition", "offset", "correlation_id")


def make_producer(bootstrap: str, *, client_id: str, idempotent: bool = True) -> AIOKafkaProducer:
    # Idempotence keeps per-partition order across retries (the outbox relay needs it).
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        client_id=client_id,
        enable_idempotence=idempotent,
        acks="all",
        linger_ms=5,
        max_batch_size=256 * 1024,
        request_timeout_ms=30_000,
    )


async def create_topics(bootstrap: str, names: list[str], *, partitions: int, replication: int) -> list[str]:
    """Create the topics that don't exist yet; returns the names created."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [n for n in names if n not in existing]
        if missing:
            new = [NewTopic(n, num_partitions=partitions, replication_factor=replication) for n in missing]
            try:
                await admin.create_topics(new)
            except TopicAlreadyExistsError:
                pass  # a concurrent creator won the race; the topic exists, which is what we want
        return missing
    finally:
        await admin.close()


async def delete_topics(bootstrap: str, names: list[str]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        doomed = [n for n in names if n in existing]
        if doomed:
            await admin.delete_topics(doomed)
    finally:
        await admin.close()


async def wait_for_brokers(bootstrap: str, *, brokers: int, timeout: float) -> None:
    """Return once the cluster's metadata lists ``brokers`` brokers; raise TimeoutError otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
        try:
            await admin.start()
            cluster = await admin.describe_cluster()
            if len(cluster["brokers"]) >= brokers and cluster.get("controller_id", -1) != -1:
                return
        except (KafkaError, OSError):
            pass
        finally:
            await admin.close()
        if time.monotonic() > deadline:
            raise TimeoutError(f"Kafka at {bootstrap} not ready with {brokers} broker(s) after {timeout}s")
        await asyncio.sleep(0.5)


@dataclass(frozen=True)
class ConsumerSpec:
    """One subscription: what a service reads, as which group, and what it does with each event."""

    topic: str
    group: str
    handler: Handler


# What one fetch brings of a partition, at most: a batch of 5,000 events of up to 3 kB (a fetch
# of every partition is bounded by fetch_max_bytes, 50 MiB).
PARTITION_FETCH_BYTES = 16 * 1024 * 1024

# Runners of one group in one process split its partitions: the lag gauge of their (service,
# topic) shows the sum of their lags, each runner's kept here under its id.
_LAGS: dict[tuple[str, str], dict[int, int]] = {}


class ConsumerRunner:
    def __init__(
        self,
        spec: ConsumerSpec,
        *,
        pool: asyncpg.Pool,
        producer: AIOKafkaProducer,
        bootstrap: str,
        service: str,
        batch_size: int = 500,
        lag_report_seconds: float = 5.0,
    ) -> None:
        self.spec = spec
        self.pool = pool
        self.producer = producer
        self.service = service
        self.batch_size = batch_size
        self.lag_report_seconds = lag_report_seconds
        self._stopping = asyncio.Event()
        self.consumer = AIOKafkaConsumer(
            spec.topic,
            bootstrap_servers=bootstrap,
            group_id=spec.group,
            client_id=f"{service}-{spec.group}",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            # The broker's minimum: a consumer killed with -9 is replaced within seconds.
            session_timeout_ms=6000,
            heartbeat_interval_ms=2000,
            # A partition's fetch holds a batch: at the default 1 MiB, 370 decisions of 2.8 kB.
            max_partition_fetch_bytes=PARTITION_FETCH_BYTES,
        )

    def stop(self) -> None:
        """Finish the batch in hand, commit it, then leave the group."""
        self._stopping.set()

    async def run(self) -> None:
        await self.consumer.start()
        log.info("consumer.started", topic=self.spec.topic, group=self.spec.group)
        # On a timer of its own: a consumer stuck retrying a batch still shows the lag growing.
        reporting = asyncio.create_task(self._report_lag_every(self.lag_report_seconds))
        try:
            while not self._stopping.is_set():
                batches = await self._poll()
                if batches:
                    await self._process_with_retry(batches)
        finally:
            reporting.cancel()
            _LAGS.get((self.service, self.spec.topic), {}).pop(id(self), None)
            await self.consumer.stop()
            log.info("consumer.stopped", topic=self.spec.topic, group=self.spec.group)

    async def _poll(self) -> dict[TopicPartition, list[ConsumerRecord]]:
        return await self.consumer.getmany(timeout_ms=500, max_records=self.batch_size)

    async def _report_lag_every(self, seconds: float) -> None:
        while True:
            try:
                await self._report_lag()
            except KafkaError as exc:  # the broker away or a rebalance: the next round tells
                log.debug("consumer.lag_unknown", error=repr(exc)[:200])
            await asyncio.sleep(seconds)

    async def _report_lag(self) -> None:
        """Messages between the end of the log and this group's last commit (its position before
        any), summed over this process's partitions: a batch being retried is not done."""
        partitions = list(self.consumer.assignment())
        ends = await self.consumer.end_offsets(partitions) if partitions else {}
        lag = 0
        for tp, end in ends.items():
            done = await self.consumer.committed(tp)
            lag += max(0, end - (done if done is not None else await self.consumer.position(tp)))
        lags = _LAGS.setdefault((self.service, self.spec.topic), {})
        lags[id(self)] = lag
        metrics.CONSUMER_LAG.labels(self.service, self.spec.topic).set(sum(lags.values()))

    async def _process_with_retry(self, batches: dict[TopicPartition, list[ConsumerRecord]]) -> None:
        delay = 0.5
        while True:
            try:
                await self._process(batches)
                return
            except Exception as exc:
                # Anything that is not a poison message (those were dead-lettered inside the
                # batch) is treated as transient: the database restarting, the broker away.
                # Nothing was committed, so the whole batch is applied again and the inbox turns
                # repeats into no-ops. A consumer that died here would silently stop its partition.
                log.warning(
                    "consumer.transient_error",
                    error=describe_error(exc)[:500],
                    retry_in=delay,
                    partitions=sorted(tp.partition for tp in batches),
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    async def _process(self, batches: dict[TopicPartition, list[ConsumerRecord]]) -> None:
        """What one poll brought, from every partition assigned, in one transaction: with the 12
        partitions of a topic, a batch a partition would be a twelfth of the size. Each
        partition's records stay in their order; partitions are independent of each other."""
        records = [record for partition_records in batches.values() for record in partition_records]
        try:
            consumed, poison = await self._apply_batch(records)
        except PoisonInBatch as exc:
            # An event the handler refuses undid the whole batch: again, one savepoint each, so
            # that it alone goes to the DLQ.
            log.info("consumer.batch_has_poison", reason=type(exc.__cause__).__name__)
            consumed, poison = await self._apply_one_by_one(records)
        for record, reason in poison:
            await self._dead_letter(record, reason)
        await self.consumer.commit({tp: batch[-1].offset + 1 for tp, batch in batches.items()})
        for (event_type, outcome), count in consumed.items():
            metrics.EVENTS_CONSUMED.labels(self.service, self.spec.topic, event_type, outcome).inc(count)

    async def _apply_batch(self, records: list[ConsumerRecord]) -> tuple[Consumed, Poison]:
        """The batch in one transaction, its event ids claimed in one statement: a few round trips
        an event instead of a savepoint, a claim and a release besides the handler's own. The
        cyclic collector waits meanwhile: it scanned a batch's events (a hundred objects each for a
        decision) again at each of some seventy young collections, 30 % of payments' CPU a decision.
        """
        with collector_paused():
            return await self._apply_batch_now(records)

    async def _apply_batch_now(self, records: list[ConsumerRecord]) -> tuple[Consumed, Poison]:
        consumed: Consumed = collections.Counter()
        poison: Poison = []
        decoded: list[Decoded] = []
        for record in records:
            try:
                decoded.append((record, *decode(record.value)))
            except InvalidEvent as exc:
                _log_poison(record, str(exc))
                poison.append((record, str(exc)))
                consumed[UNKNOWN_TYPE, "dead_lettered"] += 1
        async with self.pool.acquire() as conn, conn.transaction():
            new = await inbox.claim_many(conn, consumer=self.spec.group, event_ids=[d[1].id for d in decoded])
            claimed = []
            for item in decoded:
                first_time = item[1].id in new
                new.discard(item[1].id)  # the same event twice in one batch: applied once
                claimed += [item] if first_time else []
                consumed[item[1].type, "applied"] += int(first_time)
            try:
                await self._apply_claimed(conn, claimed)
            except (InvalidEvent, *POISON_ERRORS) as exc:
                raise PoisonInBatch from exc
        return consumed, poison

    async def _apply_claimed(self, conn: asyncpg.Connection, claimed: list[Decoded]) -> None:
        """Apply the events claimed now, in offset order (a batch handler takes them at once)."""
        for record, envelope, event in claimed:
            with _bound(record, envelope):
                await self.spec.handler(conn, envelope, event)

    async def _apply_one_by_one(self, records: list[ConsumerRecord]) -> tuple[Consumed, Poison]:
        consumed: Consumed = collections.Counter()
        poison: Poison = []
        async with self.pool.acquire() as conn, conn.transaction():
            for record in records:
                event_type, outcome = await self._apply(conn, record)
                if isinstance(outcome, str):
                    poison.append((record, outcome))
                    consumed[event_type, "dead_lettered"] += 1
                else:
                    consumed[event_type, "applied"] += outcome
        return consumed, poison

    async def _apply(self, conn: asyncpg.Connection, record: ConsumerRecord) -> tuple[str, int | str]:
        """The event's type, and 1 if applied, 0 if a redelivery, or the reason it is poison."""
        event_type = UNKNOWN_TYPE
        try:
            envelope, event = decode(record.value)
            event_type = envelope.type
            with _bound(record, envelope):
                async with conn.transaction():  # a savepoint: a poison message undoes only itself
                    if not await inbox.claim(conn, consumer=self.spec.group, event_id=envelope.id):
                        return event_type, 0
                    await self.spec.handler(conn, envelope, event)
            return event_type, 1
        except (InvalidEvent, *POISON_ERRORS) as exc:
            # The reason goes to the log and the DLQ header: it must not quote the event's data.
            reason = str(exc) if isinstance(exc, InvalidEvent) else describe_error(exc)
            _log_poison(record, reason)
            return event_type, reason

    async def _dead_letter(self, record: ConsumerRecord, reason: str) -> None:
        headers = [
            ("error", reason[:2000].encode()),
            ("consumer_group", self.spec.group.encode()),
            (
                "original",
                orjson.dumps({"topic": record.topic, "partition": record.partition, "offset": record.offset}),
            ),
        ]
        await self.producer.send_and_wait(
            self.spec.topic + ".dlq", value=record.value, key=record.key, headers=headers
        )
        metrics.DLQ_MESSAGES.labels(self.service, self.spec.topic).inc()
