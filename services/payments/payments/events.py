"""What payments consumes: decisions and programme versions into its projections, and the PSP's
statuses into its payment lines. Handlers are thin; the runner gives each one its transaction."""

from collections import Counter
from collections.abc import Sequence
from typing import Any
from uuid import UUID

import asyncpg
import orjson
import structlog
from krousar_common import batch_consumer, copy_binary, topics
from krousar_common.batch_consumer import BatchConsumerSpec, Offload
from krousar_common.events import Envelope, InvalidEvent
from krousar_common.events.eligibility import EligibilityDecided
from krousar_common.events.payments import PaymentStatusReported
from krousar_common.events.programmes import ProgrammeVersionPublished
from krousar_common.kafka import ConsumerSpec
from krousar_common.runtime import Runtime
from krousar_common.settings import ServiceSettings
from pydantic import BaseModel

from payments import instruction, metrics, store
from payments.config import Settings

log = structlog.get_logger("payments.events")


async def on_decision(conn: asyncpg.Connection, envelope: Envelope, event: BaseModel) -> None:
    if isinstance(event, EligibilityDecided):
        await store.upsert_decision(conn, event, envelope.data["household"])


async def on_decisions(conn: asyncpg.Connection, events: Sequence[tuple[Envelope, Any]]) -> None:
    """``on_decision`` for a batch (an evaluation publishes an event per household)."""
    await store.upsert_decisions(conn, _decided(events))


def _decided(events: Sequence[tuple[Envelope, Any]]) -> list[tuple[EligibilityDecided, dict[str, Any]]]:
    """The batch's decisions, each with its household's snapshot as the event carried it."""
    return [
        (event, envelope.data["household"])
        for envelope, event in events
        if isinstance(event, EligibilityDecided)
    ]


def decision_batch(events: Sequence[tuple[Envelope, Any]]) -> tuple[dict[tuple[UUID, int], bytes], bytes]:
    """``on_decisions``' work in a worker process (``Offload``): each household version's snapshot
    as JSON and the decision rows in binary COPY format, for ``write_decision_batch``."""
    batch = store.plan_decisions(_decided(events))
    snapshots = {key: orjson.dumps(household) for key, household in batch.households.items()}
    return snapshots, copy_binary.encode(batch.rows, store.DECISION_TYPES)


async def write_decision_batch(
    conn: asyncpg.Connection, batch: tuple[dict[tuple[UUID, int], bytes], bytes]
) -> None:
    snapshots, rows = batch
    await store.write_decisions(conn, {key: orjson.Fragment(json) for key, json in snapshots.items()}, rows)


async def on_programme(conn: asyncpg.Connection, envelope: Envelope, event: BaseModel) -> None:
    if isinstance(event, ProgrammeVersionPublished):
        await store.upsert_programme_version(conn, event.programme)
        metrics.start_run_counters([event.programme.code])


async def on_status(conn: asyncpg.Connection, envelope: Envelope, event: BaseModel) -> None:
    """A line takes the PSP's first final status; a repeat of it is counted and ignored, and a
    contradicting one is logged and ignored (the first word stands, the amounts never double)."""
    if not isinstance(event, PaymentStatusReported):
        return
    if await store.apply_statuses(conn, [event]):
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


async def on_statuses(conn: asyncpg.Connection, events: Sequence[tuple[Envelope, Any]]) -> None:
    """``on_status`` for a batch (a national run's statuses come 700,000 at a time): the first
    status of each line in one statement, then every status that applied nothing is told apart as
    ``on_status`` does. A status for an unknown payment makes the batch fall back to ``on_status``,
    which dead-letters it alone."""
    first: dict[UUID, PaymentStatusReported] = {}
    later: list[PaymentStatusReported] = []
    for _, event in events:
        if not isinstance(event, PaymentStatusReported):
            continue
        if event.payment_id in first:
            later.append(event)  # the PSP said it twice, or changed its mind
        else:
            first[event.payment_id] = event
    applied = await store.apply_statuses(conn, list(first.values()))
    unapplied = [e for pid, e in first.items() if pid not in applied] + later
    current = await store.get_line_statuses(conn, [e.payment_id for e in unapplied]) if unapplied else {}
    unknown = [e.payment_id for e in unapplied if e.payment_id not in current]
    if unknown:
        raise InvalidEvent(f"status for unknown payment {unknown[0]}")
    outcomes: Counter[tuple[str, str]] = Counter((first[pid].status, "applied") for pid in applied)
    for event in unapplied:
        state = current[event.payment_id]
        outcomes[event.status, "duplicate" if state == event.status else "contradicting"] += 1
        if state != event.status:
            log.warning(
                "status.contradicting",
                payment_id=str(event.payment_id),
                current=state,
                reported=event.status,
            )
    for (status, outcome), count in outcomes.items():
        metrics.STATUSES.labels(status, outcome).inc(count)


def consumers(settings: ServiceSettings) -> list[ConsumerSpec]:
    """Consumed message by message; decisions and statuses in batches (``start_consumers``)."""
    return [
        ConsumerSpec(settings.topic(topics.TOPUPS.name), settings.group("payments.programmes"), on_programme),
    ]


def decisions_spec(settings: Settings) -> BatchConsumerSpec:
    spec = ConsumerSpec(
        settings.topic(topics.DECISIONS.name), settings.group("payments.decisions"), on_decision
    )
    offload = Offload(decision_batch, write_decision_batch, settings.decision_workers_from)
    return BatchConsumerSpec(
        spec,
        on_decisions,
        settings.consumer_batch_size,
        runners=settings.decision_consumer_runners,
        offload=offload if settings.decision_workers_from else None,
    )


def statuses_spec(settings: Settings) -> BatchConsumerSpec:
    spec = ConsumerSpec(settings.topic(topics.STATUSES.name), settings.group("payments.statuses"), on_status)
    return BatchConsumerSpec(spec, on_statuses, settings.status_batch_size, instruction.yield_to_instructions)


async def start_consumers(runtime: Runtime) -> None:
    await batch_consumer.start(runtime, decisions_spec(runtime.settings))  # type: ignore[arg-type]
    await batch_consumer.start(runtime, statuses_spec(runtime.settings))  # type: ignore[arg-type]
