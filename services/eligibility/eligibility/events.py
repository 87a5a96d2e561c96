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
    await on_payment_instructions(conn, [(envelope, event)])


async def on_payment_instructions(conn: asyncpg.Connection, events: Sequence[Event]) -> None:
    """Who each payment is for, in batches (a national run instructs 700,000 at once). A payment
    whose PAID status came first (another topic, another consumer) is taken into account now."""
    instructions = [event for _, event in events if isinstance(event, PaymentInstructed)]
    if not instructions:
        return
    await store.insert_instructions(conn, instructions)
    excluded_on = await store.programmes_excluded_on(conn)
    excluding = [i for i in instructions if i.programme_code in excluded_on]
    if not excluding:
        return
    paid = await store.paid_among(conn, [i.payment_id for i in excluding])
    await store.queue_households(conn, [i.household_id for i in excluding if i.payment_id in paid])


async def on_payment_status(conn: asyncpg.Connection, envelope: Envelope, event: BaseModel) -> None:
    await on_payment_statuses(conn, [(envelope, event)])


async def on_payment_statuses(conn: asyncpg.Connection, events: Sequence[Event]) -> None:
    """The PSP's statuses, in batches. Only a payment by a programme that another excludes on
    changes a decision: its household is decided again, and a national run of a programme no one
    excludes on decides no one again."""
    statuses = [event for _, event in events if isinstance(event, PaymentStatusReported)]
    if not statuses:
        return
    await store.upsert_statuses(conn, statuses)
    paid = [s for s in statuses if s.status is PaymentStatus.PAID]
    excluded_on = await store.programmes_excluded_on(conn) if paid else set()
    if not excluded_on:
        return
    codes = await store.instruction_programmes(conn, [s.payment_id for s in paid])
    # A payment not seen yet (or not committed yet: its instruction's transaction may not see this
    # status either) could be by any programme: its household is decided again to be safe.
    unseen_or_excluding = [s for s in paid if s.payment_id not in codes or codes[s.payment_id] in excluded_on]
    await store.queue_households(conn, [s.household_id for s in unseen_or_excluding])


def consumers(settings: ServiceSettings) -> list[ConsumerSpec]:
    """Programme versions, consumed one event at a time; the rest in batches (``start_consumers``)."""
    return [
        ConsumerSpec(
            settings.topic(topics.TOPUPS.name),
            settings.group("eligibility.programmes"),
            on_programme_published,
        )
    ]


def batch_specs(settings: ServiceSettings) -> list[BatchConsumerSpec]:
    """Household snapshots (an import brings 700,000 at a time), and a national run's instructions
    and statuses."""
    subscriptions = [
        (topics.HOUSEHOLDS, "eligibility.households", on_household_event, on_household_events),
        (
            topics.INSTRUCTIONS,
            "eligibility.payment-instructions",
            on_payment_instructed,
            on_payment_instructions,
        ),
        (topics.STATUSES, "eligibility.payment-statuses", on_payment_status, on_payment_statuses),
    ]
    return [
        BatchConsumerSpec(
            ConsumerSpec(settings.topic(topic.name), settings.group(group), handler),
            batch_handler,
            settings.consumer_batch_size,
        )
        for topic, group, handler, batch_handler in subscriptions
    ]


async def start_consumers(runtime: Runtime) -> None:
    for spec in batch_specs(runtime.settings):
        await batch_consumer.start(runtime, spec)
