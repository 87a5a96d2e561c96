"""The simulator consumes instructions: each new payment id gets its outcome and its due time.

Instructions come a national run at a time (700,000 in a minute), so they are applied a batch at a
time (``krousar_common.batch_consumer``: one inbox claim and one INSERT a batch); the handler of
one instruction is the fallback for a batch that holds a poison message.
"""

from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg
from krousar_common import batch_consumer, topics
from krousar_common.batch_consumer import BatchConsumerSpec, BatchHandler
from krousar_common.events import Envelope
from krousar_common.events.payments import PaymentInstructed
from krousar_common.kafka import ConsumerSpec, Handler
from krousar_common.runtime import Runtime
from krousar_common.settings import ServiceSettings
from pydantic import BaseModel

from psp_simulator import domain, metrics, store
from psp_simulator.config import Settings


def make_handler(settings: Settings) -> Handler:
    """One instruction at a time: the fallback of a batch that holds a poison message."""
    shares = domain.Shares(settings.paid_share, settings.failed_share, settings.duplicate_share)

    async def on_instruction(conn: asyncpg.Connection, envelope: Envelope, event: BaseModel) -> None:
        if not isinstance(event, PaymentInstructed):
            return
        row = settlement_row(event, settings, shares)
        new = await store.record_instructions(conn, [row], delays=delays(settings), now=datetime.now(UTC))
        metrics.INSTRUCTIONS.labels("new" if new else "repeat").inc()

    return on_instruction


def settlement_row(event: PaymentInstructed, settings: Settings, shares: domain.Shares) -> tuple:
    """The settlements row (``store.SETTLEMENT_COLUMNS``) of a new instruction."""
    outcome = domain.outcome_of(event.payment_id, shares, settings.seed)
    return (
        event.payment_id,
        event.run_id,
        event.household_id,
        event.amount_riel,
        outcome.status.value,
        outcome.reason,
        outcome.report_twice,
    )


def delays(settings: Settings) -> store.Delays:
    return store.Delays(
        settle=timedelta(seconds=settings.settle_delay_seconds),
        unclaimed=timedelta(seconds=settings.unclaimed_delay_seconds),
    )


def make_batch_handler(settings: Settings) -> BatchHandler:
    shares = domain.Shares(settings.paid_share, settings.failed_share, settings.duplicate_share)

    async def on_instructions(conn: asyncpg.Connection, events: Sequence[tuple[Envelope, Any]]) -> None:
        rows: dict[UUID, tuple] = {}
        repeats: Counter[UUID] = Counter()
        for _, event in events:
            if not isinstance(event, PaymentInstructed):
                continue
            if event.payment_id in rows:
                repeats[event.payment_id] += 1  # instructed twice within the batch
            else:
                rows[event.payment_id] = settlement_row(event, settings, shares)
        new = await store.record_instructions(
            conn, list(rows.values()), delays=delays(settings), now=datetime.now(UTC)
        )
        if repeats:
            await store.count_repeats(conn, dict(repeats))
        metrics.INSTRUCTIONS.labels("new").inc(new)
        metrics.INSTRUCTIONS.labels("repeat").inc(len(rows) - new + sum(repeats.values()))

    return on_instructions


def instructions_spec(settings: Settings) -> BatchConsumerSpec:
    spec = ConsumerSpec(
        settings.topic(topics.INSTRUCTIONS.name),
        settings.group("psp_simulator.instructions"),
        make_handler(settings),
    )
    return BatchConsumerSpec(spec, make_batch_handler(settings), settings.instruction_batch_size)


def consumers(settings: ServiceSettings) -> list[ConsumerSpec]:
    return []  # instructions are consumed in batches: start_consumers


async def start_consumers(runtime: Runtime) -> None:
    await batch_consumer.start(runtime, instructions_spec(runtime.settings))  # type: ignore[arg-type]
