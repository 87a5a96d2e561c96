"""Instructing an approved run: its lines become PaymentInstructed events, batch by batch.

Lines are instructed in payment id order, one batch per transaction that writes their events to
the outbox and records their instructions, in one statement (``store.instruct_next``: PostgreSQL
builds the envelopes from the lines it reads). The instructed lines are therefore always a prefix
of the run's lines in that order, and the next batch starts after the last instruction recorded:
a line is instructed exactly once however often the process is killed (a batch happened entirely
or not at all), without asking of every line whether it was instructed. The outbox relay
publishes while later batches are being written.
"""

from datetime import UTC, datetime
from uuid import UUID

import structlog
from krousar_common import outbox, topics
from krousar_common.events import EVENT_TYPES, decode
from krousar_common.events.payments import RunState
from krousar_common.runtime import Runtime

from payments import metrics, progress, service, store
from payments.config import Settings

log = structlog.get_logger("payments.instruction")
SYSTEM = "system:payments"
INSTRUCTED = "krousar.PaymentInstructed"


async def instruct_run(runtime: Runtime, run_id: UUID) -> None:
    settings: Settings = runtime.settings  # type: ignore[assignment]
    async with runtime.pool.acquire() as conn:
        run = await store.get_run(conn, run_id)
        if run is None or run["state"] != RunState.APPROVED:
            return
        done = await store.count_instructed(conn, run_id)
    with metrics.INSTRUCTION_DURATION.time():
        while (count := await _instruct_batch(runtime, run_id, settings.instruction_batch_size)) is not None:
            done += count
            await progress.report(runtime.redis, run_id, "INSTRUCTING", done, run["lines"])


async def _instruct_batch(runtime: Runtime, run_id: UUID, limit: int) -> int | None:
    """Instruct the next lines; how many, or None when there is nothing (more) for this process
    to do."""
    ctx = service.Context(SYSTEM, f"instruction-{run_id}", runtime.settings)  # type: ignore[arg-type]
    event_type = EVENT_TYPES[INSTRUCTED]
    async with runtime.transaction() as conn:
        # One instructing process per run: another one (a replica, or this one resumed) waits.
        if not await store.try_transaction_lock(conn, f"instruction:{run_id}"):
            return None
        run = await store.get_run(conn, run_id)
        if run is None or run["state"] != RunState.APPROVED:
            return None
        count, sample = await store.instruct_next(
            conn,
            run,
            limit=limit,
            topic=ctx.settings.topic(topics.INSTRUCTIONS.name),
            event_type=event_type.name,
            schema_version=event_type.schema_version,
            source=service.SOURCE,
            correlation_id=ctx.correlation_id,
            at=datetime.now(UTC),
        )
        if not count:
            await service.move(conn, run_id, RunState.APPROVED, RunState.INSTRUCTED, ctx)
            log.info("instruction.finished", run_id=str(run_id), lines=run["lines"])
            return None
        decode(sample)  # the contract holds (InvalidEvent otherwise): one check per batch
        await outbox.notify(conn)
    metrics.LINES_INSTRUCTED.labels(run["programme_code"]).inc(count)
    return count
