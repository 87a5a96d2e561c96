"""What a running service holds: the pool, Redis, the producer, the outbox relay, its consumers
and its periodic jobs. Opened by the app's lifespan, closed in reverse order on shutdown."""

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import structlog
from aiokafka import AIOKafkaProducer
from redis.asyncio import Redis

from krousar_common import db, metrics, outbox
from krousar_common.kafka import ConsumerRunner, ConsumerSpec, make_producer
from krousar_common.settings import ServiceSettings

log = structlog.get_logger("krousar.runtime")


@dataclass
class Runtime:
    settings: ServiceSettings
    pool: asyncpg.Pool
    redis: Redis
    producer: AIOKafkaProducer
    relay: outbox.OutboxRelay
    runners: list[ConsumerRunner] = field(default_factory=list)
    tasks: list[asyncio.Task] = field(default_factory=list)

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[asyncpg.Connection]:
        """One connection in one transaction; routes open it so it commits before they respond."""
        async with self.pool.acquire() as conn, conn.transaction():
            yield conn

    def spawn(self, name: str, coro: Awaitable[None]) -> None:
        task = asyncio.create_task(coro, name=name)
        task.add_done_callback(_log_crash)
        self.tasks.append(task)

    def every(
        self, seconds: float, job: Callable[["Runtime"], Awaitable[None]], *, max_busy_share: float = 1.0
    ) -> None:
        """Run ``job`` now and then every ``seconds``; a failing run is logged, not fatal. With
        ``max_busy_share`` below 1, the pause grows with the job so that it takes at most that share
        of the time (gauges read from a national-size register must not take a core of their own)."""

        async def loop() -> None:
            while True:
                started = time.monotonic()
                try:
                    await job(self)
                except Exception:
                    log.exception("runtime.periodic_job_failed", job=job.__name__)
                await asyncio.sleep(pause_after(seconds, time.monotonic() - started, max_busy_share))

        self.spawn(job.__name__, loop())


def pause_after(seconds: float, took: float, max_busy_share: float) -> float:
    """The pause after a periodic job that ran ``took`` seconds: ``seconds``, or longer when the job
    would otherwise be running more than ``max_busy_share`` of the time."""
    return max(seconds, took * (1 / max_busy_share - 1))


def _log_crash(task: asyncio.Task) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("runtime.task_crashed", task=task.get_name(), error=repr(task.exception()))


async def refresh_outbox_gauges(runtime: Runtime) -> None:
    rows, age = await runtime.relay.backlog()
    metrics.OUTBOX_BACKLOG.labels(runtime.settings.service_name).set(rows)
    metrics.OUTBOX_OLDEST_AGE.labels(runtime.settings.service_name).set(age)


@contextlib.asynccontextmanager
async def open_runtime(
    settings: ServiceSettings,
    *,
    migrations: Path | None,
    consumers: list[ConsumerSpec],
    event_sources: Sequence[outbox.Source] = (),
) -> AsyncIterator[Runtime]:
    """The service's runtime; its relay publishes the outbox table and ``event_sources``."""
    name = settings.service_name
    if migrations is not None:
        await db.migrate(settings.pg_url, settings.database or name, migrations)
    pool = await db.create_pool(settings.database_url, max_size=settings.database_pool_size)
    redis = Redis.from_url(settings.redis_url, socket_timeout=2, socket_connect_timeout=2)
    # The consumers' dead letters: a repeat in a DLQ is harmless, and an idempotent producer whose
    # batch timed out with the broker away refuses every later one of its partition for good (the
    # relay renews its own for that), which would stall a consumer's partition.
    producer = make_producer(settings.kafka_bootstrap, client_id=name, idempotent=False)
    await producer.start()
    relay = outbox.OutboxRelay(
        pool,
        lambda: make_producer(settings.kafka_bootstrap, client_id=f"{name}-outbox"),
        service=name,
        poll_seconds=settings.outbox_poll_seconds,
        sources=[outbox.OutboxTable(), *event_sources],
    )
    runtime = Runtime(settings, pool, redis, producer, relay)
    runtime.spawn("outbox-relay", relay.run())
    for spec in consumers:
        runner = ConsumerRunner(
            spec,
            pool=pool,
            producer=producer,
            bootstrap=settings.kafka_bootstrap,
            service=name,
            batch_size=settings.consumer_batch_size,
        )
        runtime.runners.append(runner)
        runtime.spawn(f"consumer-{spec.topic}", runner.run())
    runtime.every(10, refresh_outbox_gauges)
    log.info("runtime.started", consumers=[c.topic for c in consumers])
    try:
        yield runtime
    finally:
        await _close(runtime)


async def _close(runtime: Runtime) -> None:
    for runner in runtime.runners:
        runner.stop()
    runtime.relay.stop()
    # Consumers finish and commit their batch in hand; periodic jobs are simply cancelled.
    waiting = [t for t in runtime.tasks if t.get_name().startswith(("consumer-", "outbox-"))]
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.gather(*waiting, return_exceptions=True), 20)
    for task in runtime.tasks:
        task.cancel()
    await asyncio.gather(*runtime.tasks, return_exceptions=True)
    await runtime.producer.stop()
    await runtime.redis.aclose()
    await runtime.pool.close()
    log.info("runtime.stopped")
