"""Instructing an approved run: its lines become PaymentInstructed events, batch by batch.

Lines are instructed in payment id order, one batch per transaction that writes their events to
the outbox (COPY) and records their instructions (COPY). The instructed lines are therefore
always a prefix of the run's lines in that order, and the next batch starts after the last
instruction recorded: a line is instructed exactly once however often the process is killed (a
batch happened entirely or not at all), without asking of every line whether it was instructed.
The outbox relay publishes while later batches are being written.
"""

from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID, uuid4

import asyncpg
import orjson
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
    with metrics.INSTRUCTION_DURATION.time():
        while (done := await _instruct_batch(runtime, run_id, settings.instruction_batch_size)) is not None:
            await progress.report(runtime.redis, run_id, "INSTRUCTING", done, run["lines"])


async def _instruct_batch(runtime: Runtime, run_id: UUID, limit: int) -> int | None:
    """Instruct the next lines; the count of lines instructed so far, or None when there is
    nothing (more) for this process to do."""
    ctx = service.Context(SYSTEM, f"instruction-{run_id}", runtime.settings)  # type: ignore[arg-type]
    async with runtime.transaction() as conn:
        # One instructing process per run: another one (a replica, or this one resumed) waits.
        if not await store.try_transaction_lock(conn, f"instruction:{run_id}"):
            return None
        run = await store.get_run(conn, run_id)
        if run is None or run["state"] != RunState.APPROVED:
            return None
        rows = await store.lines_to_instruct(conn, run_id, limit=limit)
        if not rows:
            await service.move(conn, run_id, RunState.APPROVED, RunState.INSTRUCTED, ctx)
            log.info("instruction.finished", run_id=str(run_id), lines=run["lines"])
            return None
        envelopes = instruction_envelopes(run, rows, ctx.correlation_id)
        topic = ctx.settings.topic(topics.INSTRUCTIONS.name)
        await outbox.enqueue_many(conn, [(topic, envelope) for envelope in envelopes])  # type: ignore[arg-type]
        await store.record_instructions(
            conn, run_id, [r["payment_id"] for r in rows], [e.id for e in envelopes]
        )
        done = await store.count_instructed(conn, run_id)
    metrics.LINES_INSTRUCTED.labels(run["programme_code"]).inc(len(rows))
    return done


@dataclass(frozen=True, slots=True)
class SerialisedEnvelope:
    """An envelope already turned into bytes, for ``outbox.enqueue_many``.

    A national run instructs ~700,000 lines: building a pydantic event and envelope for each costs
    more than the whole calculation, so the bulk path writes the envelope's JSON directly and
    checks the first one of every batch against the contract (``decode``) instead.
    """

    id: UUID
    subject: str
    type: str
    payload: bytes

    def to_bytes(self) -> bytes:
        return self.payload


def instruction_envelopes(
    run: asyncpg.Record, lines: list[asyncpg.Record], correlation_id: str
) -> list[SerialisedEnvelope]:
    event_type = EVENT_TYPES[INSTRUCTED]
    now, run_id = datetime.now(UTC), str(run["run_id"])
    envelopes = []
    for line in lines:
        event_id, subject = uuid4(), str(line["household_id"])
        payload = orjson.dumps(
            {
                "id": event_id,
                "source": service.SOURCE,
                "type": event_type.name,
                "specversion": "1.0",
                "time": now,
                "subject": subject,
                "datacontenttype": "application/json",
                "correlation_id": correlation_id,
                "schema_version": event_type.schema_version,
                "data": {
                    "payment_id": str(line["payment_id"]),  # asyncpg's UUID: orjson wants str
                    "run_id": run_id,
                    "household_id": subject,
                    "programme_code": run["programme_code"],
                    "period": run["period"],
                    "component": line["component"],
                    "amount_riel": line["amount_riel"],
                    "payee_name": line["payee_name"],
                    "channel": line["channel"],
                    "account": line["account"],
                    "available_from": run["available_from"],
                    "claim_until": run["claim_until"],
                },
            }
        )
        envelopes.append(SerialisedEnvelope(event_id, subject, event_type.name, payload))
    decode(envelopes[0].payload)  # the contract holds (InvalidEvent otherwise): one check per batch
    return envelopes
