"""What payments consumes: decisions and programme versions into its projections, and the PSP's
statuses into its payment lines. Handlers are thin; the runner gives each one its transaction."""

import asyncpg
import structlog
from krousar_common import topics
from krousar_common.events import Envelope, InvalidEvent
from krousar_common.events.eligibility import EligibilityDecided
from krousar_common.events.payments import PaymentStatusReported
from krousar_common.events.programmes import ProgrammeVersionPublished
from krousar_common.kafka import ConsumerSpec
from krousar_common.settings import ServiceSettings
from pydantic import BaseModel

from payments import metrics, store

log = structlog.get_logger("payments.events")


async def on_decision(conn: asyncpg.Connection, envelope: Envelope, event: BaseModel) -> None:
    if isinstance(event, EligibilityDecided):
        await store.upsert_decision(conn, event, envelope.data["household"])


async def on_programme(conn: asyncpg.Connection, envelope: Envelope, event: BaseModel) -> None:
    if isinstance(event, ProgrammeVersionPublished):
        await store.upsert_programme_version(conn, event.programme)


async def on_status(conn: asyncpg.Connection, envelope: Envelope, event: BaseModel) -> None:
    """A line takes the PSP's first final status; a repeat of it is counted and ignored, and a
    contradicting one is logged and ignored (the first word stands, the amounts never double)."""
    if not isinstance(event, PaymentStatusReported):
        return
    if await store.apply_status(
        conn, event.payment_id, status=event.status, reason=event.reason, at=event.reported_at
    ):
        metrics.STATUSES.labels(event.status, "applied").inc()
        return
    current = await store.get_line_status(conn, event.payment_id)
    if current is None:
        raise InvalidEvent(f"status for unknown payment {event.payment_id}")
    if current == event.status:
        metrics.STATUSES.labels(event.status, "duplicate").inc()
        return
    metrics.STATUSES.labels(event.status, "contradicting").inc()
    log.warning(
        "status.contradicting", payment_id=str(event.payment_id), current=current, reported=event.status
    )


def consumers(settings: ServiceSettings) -> list[ConsumerSpec]:
    return [
        ConsumerSpec(
            settings.topic(topics.DECISIONS.name), settings.group("payments.decisions"), on_decision
        ),
        ConsumerSpec(settings.topic(topics.TOPUPS.name), settings.group("payments.programmes"), on_programme),
        ConsumerSpec(settings.topic(topics.STATUSES.name), settings.group("payments.statuses"), on_status),
    ]
