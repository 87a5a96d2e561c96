"""Instructing an approved run: its lines become PaymentInstructed events, batch by batch.

Lines are instructed in payment id order, one batch per transaction that moves the run's mark
(``instructed_through``) over them and their tallies to INSTRUCTED (``store.instruct_next``).
The instructed lines are therefore always a prefix of the run's lines in that order, and the
next batch starts after the mark: a line is instructed exactly once however often the process is
killed (a batch happened entirely or not at all), without asking of every line whether it was.

The instructed lines are the outbox of their events: the outbox relay publishes them from the
lines (``InstructedLines``, an ``outbox.Source``) while later batches are being instructed, and
moves the run's ``published_through`` mark once the broker has them. An event's id is made from
its payment id (the SQL function ``instruction_id``), so an event sent again after a crash is the
same event, which the PSP's inbox drops.
"""

import asyncio
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import asyncpg
import structlog
from krousar_common import outbox, topics
from krousar_common.events import EVENT_TYPES, InvalidEvent, decode
from krousar_common.events.payments import RunState
from krousar_common.runtime import Runtime

from payments import metrics, progress, service, store
from payments.config import Settings

log = structlog.get_logger("payments.instruction")
SYSTEM = "system:payments"
INSTRUCTED = "krousar.PaymentInstructed"
YIELD_POLL_SECONDS = 0.25


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
    async with runtime.transaction() as conn:
        # One instructing process per run: another one (a replica, or this one resumed) waits.
        if not await store.try_transaction_lock(conn, f"instruction:{run_id}"):
            return None
        run = await store.get_run(conn, run_id)
        if run is None or run["state"] != RunState.APPROVED:
            return None
        count = await store.instruct_next(conn, run_id, limit=limit)
        if not count:
            await service.move(conn, run_id, RunState.APPROVED, RunState.INSTRUCTED, ctx)
            log.info("instruction.finished", run_id=str(run_id), lines=run["lines"])
            return None
        await outbox.notify(conn)
    metrics.LINES_INSTRUCTED.labels(run["programme_code"]).inc(count)
    return count


async def yield_to_instructions(runtime: Runtime) -> None:
    """Before a batch of PSP statuses: wait (``statuses_yield_seconds`` at most) while a run is
    being instructed or its instructions published. On a few cores, getting a national run to the
    PSP comes first; the statuses of its first payments, coming back meanwhile, are applied seconds
    later instead of slowing the rest of the run down. (Never longer: instructions held back by a
    broken contract or a broker away must not stop the statuses of other runs.)"""
    settings: Settings = runtime.settings  # type: ignore[assignment]
    deadline = time.monotonic() + settings.statuses_yield_seconds
    while time.monotonic() < deadline:
        async with runtime.pool.acquire() as conn:
            if not await store.instructions_pending(conn):
                return
        await asyncio.sleep(YIELD_POLL_SECONDS)


class InstructedLines:
    """The PaymentInstructed events of instructed lines not yet published, a run at a time."""

    def __init__(self, settings: Settings) -> None:
        self.topic = settings.topic(topics.INSTRUCTIONS.name)

    async def take(
        self, conn: asyncpg.Connection, limit: int, after: Mapping[str, Any] | None = None
    ) -> Sequence[Mapping[str, Any]]:
        run = await store.run_to_publish(conn, after["run_id"] if after else None)
        if run is None:
            return []
        event_type = EVENT_TYPES[INSTRUCTED]
        envelope = {
            "source": service.SOURCE,
            "type": event_type.name,
            "specversion": "1.0",
            "time": run["approved_at"].isoformat(),
            "datacontenttype": "application/json",
            "correlation_id": f"instruction-{run['run_id']}",
            "schema_version": event_type.schema_version,
        }
        of_run = {
            "run_id": str(run["run_id"]),
            "programme_code": run["programme_code"],
            "period": run["period"],
            "available_from": run["available_from"],
            "claim_until": run["claim_until"],
        }
        rows = await store.instructions_to_publish(
            conn,
            run["run_id"],
            after=after["payment_id"] if after else run["published_through"],
            limit=limit,
            topic=self.topic,
            event_type=event_type.name,
            envelope=outbox.json_members(envelope),
            of_run=outbox.json_members(of_run),
        )
        if rows:
            try:
                decode(rows[0]["payload"])  # the contract holds: one check a round
            except InvalidEvent as exc:
                # A change of code broke the events: they wait (the outbox backlog alert fires)
                # rather than go to consumers that would dead-letter them, and the relay goes on
                # publishing the service's other events.
                log.error("instruction.contract_broken", run_id=str(run["run_id"]), error=str(exc)[:500])
                return []
        return rows

    async def sent(self, conn: asyncpg.Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        await store.mark_published(conn, rows[-1]["run_id"], rows[-1]["payment_id"])

    async def backlog(self, conn: asyncpg.Connection) -> tuple[int, float]:
        lines, oldest = await store.instructions_unpublished(conn)
        return lines, (datetime.now(UTC) - oldest).total_seconds() if oldest else 0.0
