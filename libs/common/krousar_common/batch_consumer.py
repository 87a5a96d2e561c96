"""Consumers that apply a whole batch of messages at once, for topics that carry a national run.

``ConsumerRunner`` applies a batch message by message, each in a savepoint with its inbox claim:
four round trips to PostgreSQL a message, which is right for a trickle of registrations and
too slow for the 700,000 instructions of a payment run and the statuses that come back. A
``BatchConsumerRunner`` decodes a partition's batch, claims every event id in the inbox with one
statement, and hands the events not applied before to a batch handler that writes them with a
statement or two; it commits the offsets after that transaction, like ``ConsumerRunner``.

Exactly the same effect as the per-message path, which stays the fallback: when any message of
the batch is poison (it does not decode, or the batch's SQL refuses its data), the batch is
rolled back and applied again by ``ConsumerRunner``, which dead-letters that message alone.
A transient failure (PostgreSQL restarting) is retried with the whole batch, as there.
"""

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from uuid import UUID

import asyncpg
import structlog
from aiokafka import ConsumerRecord, TopicPartition
from pydantic import BaseModel

from krousar_common import metrics
from krousar_common.events import Envelope, InvalidEvent, decode
from krousar_common.kafka import ConsumerRunner, ConsumerSpec
from krousar_common.runtime import Runtime

log = structlog.get_logger("krousar.batch_consumer")

Event = tuple[Envelope, BaseModel]
BatchHandler = Callable[[asyncpg.Connection, Sequence[Event]], Awaitable[None]]
POISON = (InvalidEvent, asyncpg.DataError, asyncpg.IntegrityConstraintViolationError)


@dataclass(frozen=True)
class BatchConsumerSpec:
    """A subscription applied batch by batch: ``batch_handler`` gets the batch's events not applied
    before, in offset order; ``spec.handler`` applies one event (the fallback path)."""

    spec: ConsumerSpec
    batch_handler: BatchHandler
    batch_size: int = 5000


class BatchConsumerRunner(ConsumerRunner):
    def __init__(self, batch_spec: BatchConsumerSpec, **kwargs: object) -> None:
        super().__init__(batch_spec.spec, batch_size=batch_spec.batch_size, **kwargs)  # type: ignore[arg-type]
        self.batch_handler = batch_spec.batch_handler

    async def _process(self, tp: TopicPartition, records: list[ConsumerRecord]) -> None:
        try:
            events = [decode(record.value) for record in records]
            async with self.pool.acquire() as conn, conn.transaction():
                fresh = await claim_many(conn, consumer=self.spec.group, event_ids=[e.id for e, _ in events])
                todo = _first_of_each(events, fresh)
                await self.batch_handler(conn, todo)
        except POISON as exc:
            log.info("consumer.batch_has_poison", reason=type(exc).__name__, partition=tp.partition)
            await super()._process(tp, records)  # message by message: the poison one to the DLQ
            return
        await self.consumer.commit({tp: records[-1].offset + 1})
        for event_type in {e.type for e, _ in todo}:
            applied = sum(1 for e, _ in todo if e.type == event_type)
            _count_consumed(self.service, self.spec.topic, event_type, applied)


async def claim_many(conn: asyncpg.Connection, *, consumer: str, event_ids: list[UUID]) -> set[UUID]:
    """The ids ``consumer`` sees for the first time (``inbox.claim`` for a batch). PostgreSQL
    answers with the others, almost always none, rather than with a row per id."""
    distinct = set(event_ids)
    seen_before = await conn.fetchval(
        "WITH claimed AS (INSERT INTO inbox (consumer, event_id) SELECT $1, unnest($2::uuid[])"
        " ON CONFLICT DO NOTHING RETURNING event_id)"
        " SELECT array_agg(id) FROM unnest($2::uuid[]) AS id WHERE id NOT IN (SELECT event_id FROM claimed)",
        consumer,
        list(distinct),
    )
    return distinct.difference(seen_before or ())


def _first_of_each(events: list[Event], fresh: set[UUID]) -> list[Event]:
    """The events claimed now, each once (a redelivery may repeat an event within one batch)."""
    todo, seen = [], set()
    for event in events:
        event_id = event[0].id
        if event_id in fresh and event_id not in seen:
            seen.add(event_id)
            todo.append(event)
    return todo


def _count_consumed(service: str, topic: str, event_type: str, applied: int) -> None:
    labels = {"service": service, "topic": topic, "type": event_type, "outcome": "applied"}
    names = metrics.EVENTS_CONSUMED._labelnames  # the counter gained a type label lately
    metrics.EVENTS_CONSUMED.labels(**{n: labels[n] for n in names}).inc(applied)


def start(runtime: Runtime, batch_spec: BatchConsumerSpec) -> None:
    """Run a batch consumer in the service's runtime, stopped and watched like its other consumers."""
    settings = runtime.settings
    runner = BatchConsumerRunner(
        batch_spec,
        pool=runtime.pool,
        producer=runtime.producer,
        bootstrap=settings.kafka_bootstrap,
        service=settings.service_name,
    )
    runtime.runners.append(runner)
    runtime.spawn(f"consumer-{batch_spec.spec.topic}", runner.run())
