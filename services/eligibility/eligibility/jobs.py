"""Background work of eligibility: the clock (daily), full evaluation runs and the decider that
drains the queue of households to decide again."""

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Sequence
from datetime import date
from typing import TypeVar
from uuid import UUID, uuid4

import asyncpg
import structlog
from krousar_common import topics
from krousar_common.runtime import Runtime

from eligibility import evaluation, metrics, store, workers
from eligibility.config import Settings

log = structlog.get_logger("eligibility.jobs")
EVALUATOR_LOCK = 7_245_102  # one full evaluation at a time per database
DAILY = "system:daily"
T = TypeVar("T")


def publishing(settings: Settings, correlation_id: str) -> evaluation.Publishing:
    topic = settings.topic(topics.DECISIONS.name) if settings.publish_decisions else None
    return evaluation.Publishing(topic, correlation_id)


# --- the clock -------------------------------------------------------------------------------------


async def request_run(
    conn: asyncpg.Connection, *, programmes: Sequence[str] | None, reason: str, by: str
) -> UUID:
    run_id = uuid4()
    await store.insert_run(
        conn, run_id, programmes=None if programmes is None else list(programmes), reason=reason, by=by
    )
    return run_id


async def follow_calendar(conn: asyncpg.Connection, today: date) -> UUID | None:
    """Move the clock to ``today`` (unless an operator holds it) and re-decide everyone: cards
    expire and children grow up without any event saying so."""
    clock = await store.get_clock(conn)
    if clock is not None and (clock["held"] or clock["day"] >= today):
        return None
    await store.set_clock(conn, today, held=False, by=DAILY)
    return await request_run(conn, programmes=None, reason=f"daily: {today}", by=DAILY)


async def set_day(conn: asyncpg.Connection, on: date | None, by: str) -> UUID:
    """Operator: hold the clock at ``on`` (None: follow the calendar again) and re-decide everyone."""
    day = on or evaluation.today()
    await store.set_clock(conn, day, held=on is not None, by=by)
    what = f"held at {day}" if on is not None else f"following the calendar from {day}"
    return await request_run(conn, programmes=None, reason=f"operator: {what}", by=by)


async def tick_clock(runtime: Runtime) -> None:
    async with runtime.transaction() as conn:
        run_id = await follow_calendar(conn, evaluation.today())
    if run_id is not None:
        log.info("clock.advanced", run_id=str(run_id))


# --- full evaluation runs --------------------------------------------------------------------------


async def execute_runs(pool: asyncpg.Pool, settings: Settings) -> bool:
    """Execute every requested run as one pass (their programmes merged); False when none or when
    another process holds the evaluator lock."""
    async with pool.acquire() as lock_conn:
        if not await lock_conn.fetchval("SELECT pg_try_advisory_lock($1)", EVALUATOR_LOCK):
            return False
        try:
            return await _execute_claimed(pool, lock_conn, settings)
        finally:
            await lock_conn.execute("SELECT pg_advisory_unlock($1)", EVALUATOR_LOCK)


async def _execute_claimed(pool: asyncpg.Pool, lock_conn: asyncpg.Connection, settings: Settings) -> bool:
    async with lock_conn.transaction():
        day = await evaluation.current_day(lock_conn)
        runs = await store.claim_runs(lock_conn, day)
    if not runs:
        return False
    run_ids = [r["run_id"] for r in runs]
    codes = (
        None
        if any(r["programmes"] is None for r in runs)
        else sorted({c for r in runs for c in r["programmes"]})
    )
    started = time.perf_counter()
    try:
        outcome = await evaluate(pool, settings, codes, day, run_ids)
    except Exception as exc:
        await store.finish_runs(lock_conn, run_ids, "FAILED", f"{type(exc).__name__}: {exc}"[:1000])
        raise
    await store.finish_runs(lock_conn, run_ids, "DONE", None)
    seconds = time.perf_counter() - started
    metrics.EVALUATION_SECONDS.observe(seconds)
    metrics.DECISIONS_PUBLISHED.labels("evaluation").inc(outcome.published)
    log.info(
        "evaluation.done",
        day=str(day),
        programmes=codes or "all",
        households=outcome.households,
        published=outcome.published,
        seconds=round(seconds, 2),
    )
    return True


async def evaluate(
    pool: asyncpg.Pool, settings: Settings, codes: list[str] | None, day: date, run_ids: list[UUID]
) -> evaluation.Outcome:
    """Every household for the programmes ``codes`` (None: all): split over worker processes when
    the register is large enough to be worth it."""
    publish = publishing(settings, f"evaluation-{run_ids[0]}")
    batch_size = settings.evaluation_batch_size
    if settings.evaluation_workers > 1:
        async with pool.acquire() as conn:
            households = await store.household_count(conn)
        if households >= settings.evaluation_workers_from:
            return await workers.evaluate_in_workers(
                pool,
                settings.database_url,
                codes,
                day,
                publish,
                workers=settings.evaluation_workers,
                batch_size=batch_size,
                run_ids=run_ids,
            )
    return await evaluation.evaluate_all(pool, codes, day, publish, batch_size=batch_size, run_ids=run_ids)


# --- the decider -----------------------------------------------------------------------------------


class Decider:
    """Loops woken by NOTIFY (or every second): the queue of households (``decider_loops`` of
    them), and requested runs. Separate loops so a national re-evaluation never delays the
    household a commune just enrolled.
    """

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.settings: Settings = runtime.settings  # type: ignore[assignment]
        self._queue_wake = asyncio.Event()
        self._runs_wake = asyncio.Event()

    def _wake(self, *_: object) -> None:
        self._queue_wake.set()
        self._runs_wake.set()

    async def listen(self) -> None:
        async with self.runtime.pool.acquire() as conn:
            await conn.add_listener(store.PENDING_CHANNEL, self._wake)
            try:
                await asyncio.Event().wait()  # until cancelled at shutdown
            finally:
                with contextlib.suppress(asyncpg.InterfaceError, asyncpg.PostgresConnectionError):
                    await conn.remove_listener(store.PENDING_CHANNEL, self._wake)

    async def drain_queue(self) -> None:
        publish = publishing(self.settings, "decider")
        while True:
            outcome = await _guarded(
                evaluation.drain_pending(self.runtime.pool, publish, self.settings.decider_batch_size)
            )
            if outcome is not None:
                metrics.DECISIONS_PUBLISHED.labels("change").inc(outcome.published)
                metrics.observe_decision_latency(outcome.event_times)
            if outcome is not None and outcome.taken and (outcome.households or not outcome.skipped):
                continue  # more may be queued
            # Nothing queued, or only households others hold right now: give them a moment.
            await _wait(self._queue_wake, 0.2 if outcome is not None and outcome.skipped else 1.0)

    async def execute_runs(self) -> None:
        while True:
            if not await _guarded(execute_runs(self.runtime.pool, self.settings)):
                await _wait(self._runs_wake, 1.0)


async def _guarded(work: Awaitable[T]) -> T | None:
    """Run one step; a database outage is logged and retried by the loop, never fatal."""
    try:
        return await work
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        log.warning("decider.failed", error=str(exc)[:500])
        await asyncio.sleep(1)
        return None


async def _wait(event: asyncio.Event, seconds: float) -> None:
    event.clear()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), seconds)


async def schedule(runtime: Runtime) -> None:
    settings: Settings = runtime.settings  # type: ignore[assignment]
    decider = Decider(runtime)
    runtime.spawn("eligibility-listener", decider.listen())
    for number in range(settings.decider_loops):
        runtime.spawn(f"eligibility-decider-{number}", decider.drain_queue())
    runtime.spawn("eligibility-evaluator", decider.execute_runs())
    runtime.every(settings.clock_check_seconds, tick_clock)
