"""Consumers whose handler takes a whole batch of events, for topics that carry a national run.

``ConsumerRunner`` claims a poll's batch (the records of every partition assigned) in the inbox
with one statement and hands the events not applied before to the handler one by one, in one
transaction. For the 700,000 instructions of a payment run and the statuses that come back, a
``BatchConsumerRunner`` hands them to a batch handler at once, which writes them with a statement
or two. Exactly the same effect: when the batch handler refuses an event, the batch is rolled back
and applied again one event at a time by the spec's own handler, which dead-letters that event
alone; a transient failure (PostgreSQL restarting) is retried with the whole batch.

Decoding and validating the events and building the rows is Python, one core a process: a
consumer with an ``Offload`` has its large batches decoded and built in a worker process of its
own (``prepare``), which hands back the event ids and types and what ``Offload.write`` writes (rows
already in binary COPY format), so the service process only claims and writes while the worker
makes the next batch. The result is the same: the worker decodes with the same ``decode``, and a
batch it can't take whole (a poison message, an event twice in it, an event applied before) takes
the path above instead.
"""

import asyncio
import collections
import functools
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg
import structlog
from aiokafka import ConsumerRecord, TopicPartition
from pydantic import BaseModel

from krousar_common import inbox, worker_processes
from krousar_common.events import Envelope, InvalidEvent, decode
from krousar_common.kafka import (
    POISON_ERRORS,
    Consumed,
    ConsumerRunner,
    ConsumerSpec,
    Decoded,
    Poison,
    PoisonInBatch,
)
from krousar_common.runtime import Runtime

log = structlog.get_logger("krousar.batch_consumer")

Event = tuple[Envelope, BaseModel]
BatchHandler = Callable[[asyncpg.Connection, Sequence[Event]], Awaitable[None]]


@dataclass(frozen=True)
class Offload:
    """How a consumer's large batches are made ready in a worker process: ``build`` (a module-level
    function: it is called in the worker) turns the batch's decoded events into what ``write``
    writes in the service process, in the batch's transaction."""

    build: Callable[[Sequence[Event]], Any]
    write: Callable[[asyncpg.Connection, Any], Awaitable[None]]
    # Smaller batches (a household registered now and then) are not worth the trip.
    from_records: int = 100


@dataclass(frozen=True)
class Prepared:
    """A batch made ready by a worker: each record's event id and type, in record order, and what
    ``Offload.write`` takes."""

    event_ids: list[UUID]
    event_types: list[str]
    payload: Any


def prepare(build: Callable[[Sequence[Event]], Any], values: list[bytes]) -> Prepared | None:
    """In a worker process: decode and validate ``values`` as the runner does, and ``build`` what
    they write; None for a batch that must take the runner's own path (a poison message in it, or
    an event twice)."""
    try:
        events = [decode(value) for value in values]
    except InvalidEvent:
        return None
    ids = [envelope.id for envelope, _ in events]
    if len(set(ids)) != len(ids):
        return None
    return Prepared(ids, [envelope.type for envelope, _ in events], build(events))


class _AppliedBefore(Exception):
    """Some events of an offloaded batch were applied before (a redelivery): undo its claims."""


@dataclass(frozen=True)
class BatchConsumerSpec:
    """A subscription applied batch by batch: ``batch_handler`` gets the batch's events not applied
    before, in offset order; ``spec.handler`` applies one event (the fallback path)."""

    spec: ConsumerSpec
    batch_handler: BatchHandler
    batch_size: int = 5000
    # Awaited before each batch is fetched: work that matters more can have the cores first.
    yield_to: Callable[[Runtime], Awaitable[None]] | None = None
    # Runners of the group in the process: they split its partitions, so one decodes and builds a
    # batch while the other's is written.
    runners: int = 1
    offload: Offload | None = None


class BatchConsumerRunner(ConsumerRunner):
    def __init__(
        self,
        batch_spec: BatchConsumerSpec,
        yield_to: Callable[[], Awaitable[None]] | None,
        **kwargs: object,
    ) -> None:
        super().__init__(batch_spec.spec, batch_size=batch_spec.batch_size, **kwargs)  # type: ignore[arg-type]
        self.batch_handler = batch_spec.batch_handler
        self.yield_to = yield_to
        self.offload = batch_spec.offload
        self.executor: ProcessPoolExecutor | None = None

    async def start_worker(self) -> None:
        """Spawn the worker process and have it import what it runs (a second or two), so that the
        first batch does not wait for it."""
        if self.offload is not None:
            self.executor = worker_processes.pool(1)
            await asyncio.get_running_loop().run_in_executor(
                self.executor, functools.partial(prepare, self.offload.build), []
            )

    async def run(self) -> None:
        try:
            await super().run()
        finally:
            if self.executor is not None:
                self.executor.shutdown(wait=False, cancel_futures=True)

    async def _poll(self) -> dict[TopicPartition, list[ConsumerRecord]]:
        if self.yield_to is not None:
            await self.yield_to()
        return await super()._poll()

    async def _apply_claimed(self, conn: asyncpg.Connection, claimed: list[Decoded]) -> None:
        await self.batch_handler(conn, [(envelope, event) for _, envelope, event in claimed])

    async def _apply_batch_now(self, records: list[ConsumerRecord]) -> tuple[Consumed, Poison]:
        if self.offload is None or self.executor is None or len(records) < self.offload.from_records:
            return await super()._apply_batch_now(records)
        prepared = await self._prepare(self.offload, self.executor, records)
        if prepared is None:
            return await super()._apply_batch_now(records)
        try:
            async with self.pool.acquire() as conn, conn.transaction():
                new = await inbox.claim_many(conn, consumer=self.spec.group, event_ids=prepared.event_ids)
                if len(new) != len(prepared.event_ids):
                    raise _AppliedBefore
                try:
                    await self.offload.write(conn, prepared.payload)
                except (InvalidEvent, *POISON_ERRORS) as exc:
                    raise PoisonInBatch from exc
        except _AppliedBefore:
            return await super()._apply_batch_now(records)
        return collections.Counter((event_type, "applied") for event_type in prepared.event_types), []

    async def _prepare(
        self, offload: Offload, executor: ProcessPoolExecutor, records: list[ConsumerRecord]
    ) -> Prepared | None:
        values = [record.value for record in records]
        try:
            return await asyncio.get_running_loop().run_in_executor(
                executor, functools.partial(prepare, offload.build), values
            )
        except BrokenProcessPool:
            # The worker died (killed, out of memory): a new one for the next batch, this one here.
            log.warning("batch_consumer.worker_lost", topic=self.spec.topic)
            executor.shutdown(wait=False, cancel_futures=True)
            self.executor = worker_processes.pool(1)
            return None


async def start(runtime: Runtime, batch_spec: BatchConsumerSpec) -> None:
    """Run a batch consumer's runners in the service's runtime, stopped and watched like its other
    consumers (their worker processes, if they offload, started first)."""
    settings = runtime.settings
    yield_to = batch_spec.yield_to
    runners = [
        BatchConsumerRunner(
            batch_spec,
            None if yield_to is None else lambda: yield_to(runtime),
            pool=runtime.pool,
            producer=runtime.producer,
            bootstrap=settings.kafka_bootstrap,
            service=settings.service_name,
        )
        for _ in range(batch_spec.runners)
    ]
    await asyncio.gather(*(runner.start_worker() for runner in runners))
    for number, runner in enumerate(runners):
        runtime.runners.append(runner)
        runtime.spawn(f"consumer-{batch_spec.spec.topic}-{number}", runner.run())
