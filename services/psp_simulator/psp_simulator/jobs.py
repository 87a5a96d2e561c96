"""The reporter: due settlements become PaymentStatusReported events (via the outbox), some twice."""

from datetime import UTC, datetime

from krousar_common import outbox, topics
from krousar_common.events import EVENT_TYPES, decode
from krousar_common.runtime import Runtime

from psp_simulator import metrics, store
from psp_simulator.config import Settings

SOURCE = "krousar/psp-simulator"
REPORTED = "krousar.PaymentStatusReported"


async def report_due(runtime: Runtime) -> None:
    settings: Settings = runtime.settings  # type: ignore[assignment]
    while await _report_batch(runtime, settings) == settings.report_batch_size:
        pass


async def _report_batch(runtime: Runtime, settings: Settings) -> int:
    event_type = EVENT_TYPES[REPORTED]
    async with runtime.transaction() as conn:
        done = await store.report_due(
            conn,
            datetime.now(UTC),
            settings.report_batch_size,
            topic=settings.topic(topics.STATUSES.name),
            event_type=event_type.name,
            schema_version=event_type.schema_version,
            source=SOURCE,
        )
        if not done["settled"]:
            return 0
        decode(done["sample"])  # the contract holds (InvalidEvent otherwise): one check per batch
        await outbox.notify(conn)
    for status, count in done["statuses"].items():
        metrics.STATUSES_REPORTED.labels(status).inc(count)
    return done["settled"]


async def schedule(runtime: Runtime) -> None:
    settings: Settings = runtime.settings  # type: ignore[assignment]
    runtime.every(settings.report_interval_seconds, report_due)
