"""Consumers whose handler takes a whole batch of events, for topics that carry a national run.

``ConsumerRunner`` claims a poll's batch (the records of every partition assigned) in the inbox
with one statement and hands the events not applied before to the handler one by one, in one
transaction. For the 700,000 instructions of a payment run and the statuses that come back, a
``BatchConsumerRunner`` hands them to a batch handler at once, which writes them with a statement
or two. Exactly the same effect: when the batch handler refuses an event, the batch is rolled back
and applied again one event at a time by the spec's own handler, which dead-letters that event
alone; a transient failure (PostgreSQL restarting) is retried with the whole batch.
"""

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import asyncpg
from aiokafka import ConsumerRecord, TopicPartition
from pydantic import BaseModel

from krousar_common.events import Envelope
from krousar_common.kafka import ConsumerRunner, ConsumerSpec, Decoded
from krousar_common.runtime import Runtime

Event = tuple[Envelope, BaseModel]
BatchHandler = Callable[[asyncpg.Connection, Sequence[Event]], Awaitable[None]]


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

    async def _poll(self) -> dict[TopicPartition, list[ConsumerRecord]]:
        if self.yield_to is not None:
            await self.yield_to()
        return await super()._poll()

    async def _apply_claimed(self, conn: asyncpg.Connection, claimed: list[Decoded]) -> None:
        await self.batch_handler(conn, [(envelope, event) for _, envelope, event in claimed])


def start(runtime: Runtime, batch_spec: BatchConsumerSpec) -> None:
    """Run a batch consumer's runners in the service's runtime, stopped and watched like its other
    consumers."""
    settings = runtime.settings
    yield_to = batch_spec.yield_to
    for number in range(batch_spec.runners):
        runner = BatchConsumerRunner(
            batch_spec,
            None if yield_to is None else lambda: yield_to(runtime),
            pool=runtime.pool,
            producer=runtime.producer,
            bootstrap=settings.kafka_bootstrap,
            service=settings.service_name,
        )
        runtime.runners.append(runner)
        runtime.spawn(f"consumer-{batch_spec.spec.topic}-{number}", runner.run())
