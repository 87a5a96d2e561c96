"""What eligibility consumes: household snapshots, programme versions and who was paid.

Handlers only update projections and say what must be decided again (the queue for households, an
evaluation run for a programme): the deciding itself is batched (``evaluation.py``).
"""

from collections.abc import Sequence

import asyncpg
from krousar_common import batch_consumer, topics
from krousar_common.batch_consumer import BatchConsumerSpec, Event
from krousar_common.events import Envelope
from krousar_common.events.households import HouseholdEvent
from krousar_common.events.payments import PaymentInstructed, PaymentStatus, PaymentStatusReported
from krousar_common.events.programmes import ProgrammeVersionPublished
from krousar_common.kafka import ConsumerSpec
from krousar_common.programmes import ProgrammeStatus
from krousar_common.runtime import Runtime
from krousar_common.settings import ServiceSettings
from pydantic import BaseModel

from eligibility import jobs, store


async def on_household_event(conn: asyncpg.Connection, envelope: Envelope, event: BaseModel) -> None:
    if isinstance(event, HouseholdEvent) and await store.upsert_household(
        conn, event.household, envelope.data["household"]
    ):
        await store.queue_households(conn, [event.household.household_id], event_times=[envelope.time])


async def on_household_events(conn: asyncpg.Connection, events: Sequence[Event]) -> None:
    """``on_household_event`` for a batch (an import brings 700,000 at a time). Every household of
    the batch is queued, a stale snapshot's too: deciding it again from the newer one held changes
    no decision, and knowing which were stale would cost a round trip each."""
    changes = [(envelope, event) for envelope, event in events if isinstance(event, HouseholdEvent)]
    await store.upsert_households(
        conn, [(event.household, envelope.data["household"]) for envelope, event in changes]
    )
    await store.queue_households(
        conn,
        [event.household.household_id for _, event in changes],
        event_times=[envelope.time for envelope, _ in changes],
    )


async def on_programme_published(conn: asyncpg.Connection, envelope: Envelope, event: BaseModel) -> None:
    if not isinstance(event, ProgrammeVersionPublished) or event.programme.status is ProgrammeStatus.DRAFT:
        return  # a DRAFT is not in force: no household is decided on it
    if await store.upsert_programme(conn, event.programme):
        programme = event.programme
        reason = f"{programme.code} v{programme.version} {programme.status}"
        await jobs.request_run(conn, programmes=[programme.code], reason=reason, by="system:programmes")


async def on_payment_instructed(conn: asyncpg.Connection, envelope: Envelope, event: BaseModel) -> None:
    if not isinstance(event, PaymentInstructed):
        return
    await store.insert_instruction(
        conn, event.payment_id, event.household_id, event.programme_code, event.period
    )
    status = await conn.fetchval(
        "SELECT status FROM payment_statuses WHERE payment_id = $1", event.payment_id
    )
    if status == PaymentStatus.PAID:  # the status came first (another topic, another consumer)
        await _decide_again_if_excluding(conn, event.household_id, event.programme_code)


async def on_payment_status(conn: asyncpg.Connection, envelope: Envelope, event: BaseModel) -> None:
    if not isinstance(event, PaymentStatusReported):
        return
    await store.upsert_status(conn, event.payment_id, event.household_id, event.status, event.reported_at)
    if event.status is not PaymentStatus.PAID:
        return
    code = await store.instruction_programme(conn, event.payment_id)
    if code is None:  # not seen yet (or not committed yet): decide again to be safe
        await store.queue_households(conn, [event.household_id])
    else:
        await _decide_again_if_excluding(conn, event.household_id, code)


async def _decide_again_if_excluding(conn: asyncpg.Connection, household_id: object, code: str) -> None:
    # Only a payment another programme excludes on changes a decision: don't re-decide the whole
    # country after every national run.
    if await store.is_excluded_by_any(conn, code):
        await store.queue_households(conn, [household_id])  # type: ignore[list-item]


def consumers(settings: ServiceSettings) -> list[ConsumerSpec]:
    """Consumed one event at a time; household snapshots in batches (``start_consumers``)."""
    subscriptions = [
        (topics.TOPUPS, "eligibility.programmes", on_programme_published),
        (topics.INSTRUCTIONS, "eligibility.payment-instructions", on_payment_instructed),
        (topics.STATUSES, "eligibility.payment-statuses", on_payment_status),
    ]
    return [
        ConsumerSpec(topic=settings.topic(topic.name), group=settings.group(group), handler=handler)
        for topic, group, handler in subscriptions
    ]


def households_spec(settings: ServiceSettings) -> BatchConsumerSpec:
    spec = ConsumerSpec(
        settings.topic(topics.HOUSEHOLDS.name), settings.group("eligibility.households"), on_household_event
    )
    return BatchConsumerSpec(spec, on_household_events, settings.consumer_batch_size)


async def start_consumers(runtime: Runtime) -> None:
    batch_consumer.start(runtime, households_spec(runtime.settings))
