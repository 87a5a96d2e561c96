"""Calculating a run: the latest decision of every household for the programme, read in batches
in household order, through the one benefit calculator, written with COPY.

The whole calculation is one transaction: a process killed half-way leaves the run DRAFT with
no line, and the resume job calculates it again. Only one calculation per (programme, period)
runs at a time: the Redis lock says so quickly, a PostgreSQL advisory lock says so for certain,
and the unique index on live payment lines would refuse a second payment anyway.
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from typing import Any
from uuid import UUID

import asyncpg
import structlog
from krousar_common.benefits import Calculator
from krousar_common.events.payments import RunState
from krousar_common.programmes import ProgrammeVersion
from krousar_common.runtime import Runtime

from payments import domain, metrics, progress, service, store, workers
from payments.assessment import Batch, RunSpec, assess_batch
from payments.config import Settings
from payments.errors import WrongState

log = structlog.get_logger("payments.calculation")
SYSTEM = "system:payments"
TRANSIENT = (OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError)


def lock_for(runtime: Runtime, run: Mapping[str, Any]) -> progress.CalculationLock:
    settings: Settings = runtime.settings  # type: ignore[assignment]
    return progress.CalculationLock(
        runtime.redis, run["programme_code"], run["period"], run["run_id"], settings.calculation_lock_seconds
    )


async def claim_lock(runtime: Runtime, run: Mapping[str, Any]) -> progress.CalculationLock:
    """Take the Redis lock of the run's (programme, period), or 409 while another run calculates.

    A lock left behind by a run that is no longer DRAFT (its process died before releasing it)
    is released rather than waited out.
    """
    lock = lock_for(runtime, run)
    if await lock.acquire() is not False:
        return lock
    holder = await lock.holder()
    if holder is not None:
        async with runtime.pool.acquire() as conn:
            held_by = await store.get_run(conn, UUID(holder))
        if held_by is not None and held_by["state"] == RunState.DRAFT:
            raise service.calculation_running(run["programme_code"], run["period"], holder)
        await lock.release(holder)
    if await lock.acquire() is False:
        raise service.calculation_running(run["programme_code"], run["period"], await lock.holder())
    return lock


async def calculate_run(runtime: Runtime, run_id: UUID) -> None:
    """Calculate a DRAFT run unless another process is at it; a run that can't be calculated is
    cancelled with the reason (a transient failure leaves it DRAFT for the resume job)."""
    async with runtime.pool.acquire() as conn:
        run = await store.get_run(conn, run_id)
    if run is None or run["state"] != RunState.DRAFT:
        return
    lock = lock_for(runtime, run)
    if await lock.acquire() is False and await lock.holder() != str(run_id):
        return  # another run of this programme and period holds the lock
    renewing = asyncio.create_task(_keep_renewed(lock))
    try:
        with metrics.CALCULATION_DURATION.time():
            await _calculate(runtime, RunSpec.of(run), run["programme_version"])
    except WrongState:
        log.info("calculation.cancelled_meanwhile", run_id=str(run_id))
    except TRANSIENT as exc:
        log.warning("calculation.interrupted", run_id=str(run_id), error=str(exc))
    except Exception as exc:
        log.exception("calculation.failed", run_id=str(run_id))
        await _abandon(runtime, run_id, exc)
    finally:
        renewing.cancel()
        await lock.release()


async def _keep_renewed(lock: progress.CalculationLock) -> None:
    while True:
        await asyncio.sleep(max(lock.ttl / 3, 1))
        await lock.renew()


async def _calculate(runtime: Runtime, run: RunSpec, version: int) -> None:
    ctx = service.Context(SYSTEM, f"calculation-{run.run_id}", runtime.settings)  # type: ignore[arg-type]
    async with runtime.transaction() as conn:
        if not await store.try_transaction_lock(conn, f"calculation:{run.programme_code}:{run.period}"):
            return
        current = await store.get_run(conn, run.run_id)
        if current is None or current["state"] != RunState.DRAFT:
            return
        programme = await service.load_programme(conn, run.programme_code, version)
        history = await load_history(conn, programme, run.period)
        totals = await _calculate_batches(runtime, conn, run, programme, history)
        await store.add_tallies(conn, run.run_id, "CALCULATED", totals.by_province())
        await service.move(
            conn,
            run.run_id,
            RunState.DRAFT,
            RunState.CALCULATED,
            ctx,
            households=totals.total_households,
            lines=totals.lines,
            amount_riel=totals.total_amount,
            households_left_out=sum(totals.left_out.values()),
            totals=totals.rows(),
            left_out_reasons=dict(totals.left_out.most_common()),
        )
    log.info(
        "calculation.finished",
        run_id=str(run.run_id),
        households=totals.total_households,
        amount_riel=totals.total_amount,
    )


async def load_history(conn: asyncpg.Connection, programme: ProgrammeVersion, period: str) -> domain.History:
    """Earlier lines of this (programme, period) and the households other programmes' payments exclude."""
    history = domain.History()
    for row in await store.lines_of_period(conn, programme.code, period):
        pair = (row["household_id"], row["component"])
        history.attempts[pair] += 1
        if row["state"] in domain.LIVE_STATES:
            history.live[pair] = row["state"]
    for exclusion in programme.target.exclusions_for(period):
        paid_in = [
            p
            for p in await store.periods_paid(conn, exclusion.programme_code)
            if exclusion.covers(exclusion.programme_code, p)
        ]
        for household_id in await store.households_paid(
            conn, exclusion.programme_code, paid_in, domain.PAID_STATES
        ):
            history.excluded.setdefault(household_id, exclusion.programme_code)
    return history


async def _calculate_batches(
    runtime: Runtime,
    conn: asyncpg.Connection,
    run: RunSpec,
    programme: ProgrammeVersion,
    history: domain.History,
) -> domain.Totals:
    """A pipeline of three: the next page is read (another connection) and the previous batch
    written (COPY, this transaction) while the calculator works on the current one in a thread,
    so PostgreSQL's share of the work runs beside Python's."""
    settings: Settings = runtime.settings  # type: ignore[assignment]
    totals = domain.Totals()
    writing: asyncio.Task[None] | None = None
    async with runtime.pool.acquire() as reader:
        total, done = await store.count_decisions(reader, run.programme_code), 0
        await progress.report(runtime.redis, run.run_id, "CALCULATING", 0, total)
        if settings.calculation_workers > 1 and total >= settings.calculation_workers_from:
            return await _calculate_in_workers(runtime, conn, reader, run, programme, history, total)
        calculator = Calculator(programme)
        try:
            async for rows in _pages(reader, run.programme_code, settings.calculation_batch_size):
                batch = await asyncio.to_thread(assess_batch, calculator, run, history, rows, totals)
                if writing is not None:
                    await writing
                writing = asyncio.create_task(_write(conn, run.run_id, batch))
                done += len(rows)
                await progress.report(runtime.redis, run.run_id, "CALCULATING", done, total)
                metrics.HOUSEHOLDS_CALCULATED.labels(run.programme_code).inc(len(rows))
            if writing is not None:
                await writing
        finally:
            if writing is not None and not writing.done():
                writing.cancel()
                with contextlib.suppress(BaseException):
                    await writing
    return totals


async def _calculate_in_workers(
    runtime: Runtime,
    conn: asyncpg.Connection,
    reader: asyncpg.Connection,
    run: RunSpec,
    programme: ProgrammeVersion,
    history: domain.History,
    total: int,
) -> domain.Totals:
    """A national run: pages of households calculated in worker processes (``workers``), written
    into this transaction as they come back."""
    settings: Settings = runtime.settings  # type: ignore[assignment]
    done = 0

    async def on_page(households: int) -> None:
        nonlocal done
        done += households
        await progress.report(runtime.redis, run.run_id, "CALCULATING", done, total)
        metrics.HOUSEHOLDS_CALCULATED.labels(run.programme_code).inc(households)

    return await workers.calculate_pages(
        conn,
        reader,
        run,
        programme,
        history,
        database_url=settings.database_url,
        workers=settings.calculation_workers,
        page_size=settings.calculation_batch_size,
        on_page=on_page,
    )


async def _pages(reader: asyncpg.Connection, programme_code: str, size: int) -> AsyncIterator[list[Any]]:
    """Decisions page by page, the next page already being read while the caller works."""
    next_page = asyncio.create_task(store.fetch_decisions(reader, programme_code, after=None, limit=size))
    try:
        while rows := await next_page:
            after = rows[-1]["household_id"]
            next_page = asyncio.create_task(
                store.fetch_decisions(reader, programme_code, after=after, limit=size)
            )
            yield rows
    finally:
        if not next_page.done():
            next_page.cancel()
            with contextlib.suppress(BaseException):
                await next_page


async def _write(conn: asyncpg.Connection, run_id: UUID, batch: Batch) -> None:
    await store.add_arithmetics(conn, batch.arithmetic_rows(run_id))
    await store.copy_lines(conn, batch.lines)
    await store.copy_left_out(conn, batch.left_out)


async def _abandon(runtime: Runtime, run_id: UUID, error: Exception) -> None:
    ctx = service.Context(SYSTEM, f"calculation-{run_id}", runtime.settings)  # type: ignore[arg-type]
    with contextlib.suppress(WrongState):
        async with runtime.transaction() as conn:
            await service.move(
                conn,
                run_id,
                RunState.DRAFT,
                RunState.CANCELLED,
                ctx,
                cancelled_by=SYSTEM,
                cancel_reason=f"calculation failed: {type(error).__name__}: {error}"[:1000],
            )
