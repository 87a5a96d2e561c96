"""The reporter: due settlements become PaymentStatusReported events (via the outbox), some twice."""

from datetime import UTC, datetime

import asyncpg
from krousar_common import outbox, topics
from krousar_common.events import Envelope, make_envelope
from krousar_common.events.payments import PaymentStatus, PaymentStatusReported
from krousar_common.runtime import Runtime

from psp_simulator import metrics, store
from psp_simulator.config import Settings

SOURCE = "krousar/psp-simulator"


def status_envelopes(row: asyncpg.Record, now: datetime) -> list[Envelope]:
    """One status event, or two with distinct ids when this payment is one to be reported twice
    (a PSP that re-sends: the payer must not count it twice)."""
    event = PaymentStatusReported(
        payment_id=row["payment_id"],
        run_id=row["run_id"],
        household_id=row["household_id"],
        status=PaymentStatus(row["status"]),
        reason=row["reason"],
        reported_at=now,
    )
    copies = 2 if row["report_twice"] else 1
    return [
        make_envelope(
            event, source=SOURCE, subject=str(row["household_id"]), correlation_id=f"psp-{row['payment_id']}"
        )
        for _ in range(copies)
    ]


async def report_due(runtime: Runtime) -> None:
    settings: Settings = runtime.settings  # type: ignore[assignment]
    while await _report_batch(runtime, settings) == settings.report_batch_size:
        pass


async def _report_batch(runtime: Runtime, settings: Settings) -> int:
    now = datetime.now(UTC)
    topic = settings.topic(topics.STATUSES.name)
    async with runtime.transaction() as conn:
        rows = await store.due_settlements(conn, now, settings.report_batch_size)
        if not rows:
            return 0
        envelopes = [e for row in rows for e in status_envelopes(row, now)]
        await outbox.enqueue_many(conn, [(topic, e) for e in envelopes])
        await store.mark_reported(conn, [r["payment_id"] for r in rows], now)
    for envelope in envelopes:
        metrics.STATUSES_REPORTED.labels(envelope.data["status"]).inc()
    return len(rows)


async def schedule(runtime: Runtime) -> None:
    settings: Settings = runtime.settings  # type: ignore[assignment]
    runtime.every(settings.report_interval_seconds, report_due)
