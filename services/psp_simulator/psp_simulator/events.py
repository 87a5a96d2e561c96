"""The simulator consumes instructions: each new payment id gets its outcome and its due time."""

from datetime import UTC, datetime, timedelta

import asyncpg
from krousar_common import topics
from krousar_common.events import Envelope
from krousar_common.events.payments import PaymentInstructed, PaymentStatus
from krousar_common.kafka import ConsumerSpec, Handler
from krousar_common.settings import ServiceSettings
from pydantic import BaseModel

from psp_simulator import domain, metrics, store
from psp_simulator.config import Settings


def make_handler(settings: Settings) -> Handler:
    shares = domain.Shares(settings.paid_share, settings.failed_share, settings.duplicate_share)

    async def on_instruction(conn: asyncpg.Connection, envelope: Envelope, event: BaseModel) -> None:
        if not isinstance(event, PaymentInstructed):
            return
        outcome = domain.outcome_of(event.payment_id, shares, settings.seed)
        delay = (
            settings.unclaimed_delay_seconds
            if outcome.status is PaymentStatus.UNCLAIMED
            else settings.settle_delay_seconds
        )
        row = {
            "payment_id": event.payment_id,
            "run_id": event.run_id,
            "household_id": event.household_id,
            "amount_riel": event.amount_riel,
            "status": outcome.status,
            "reason": outcome.reason,
            "report_twice": outcome.report_twice,
            "due_at": datetime.now(UTC) + timedelta(seconds=delay),
        }
        new = await store.record_instruction(conn, row)
        metrics.INSTRUCTIONS.labels("new" if new else "repeat").inc()

    return on_instruction


def consumers(settings: ServiceSettings) -> list[ConsumerSpec]:
    assert isinstance(settings, Settings)
    return [
        ConsumerSpec(
            settings.topic(topics.INSTRUCTIONS.name),
            settings.group("psp_simulator.instructions"),
            make_handler(settings),
        )
    ]
