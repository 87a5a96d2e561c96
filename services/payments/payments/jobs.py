"""Background work of the payments service: calculations and instructions started by requests or
resumed after a restart, the reconciliation of instructed runs, and the lines left UNCLAIMED by
a PSP silent past the claim window."""

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from uuid import UUID

import structlog
from krousar_common.events.payments import RunState
from krousar_common.runtime import Runtime

from payments import calculation, domain, instruction, service, store
from payments.config import Settings
from payments.errors import WrongState

log = structlog.get_logger("payments.jobs")
SYSTEM = "system:payments"
Work = Callable[[Runtime, UUID], Awaitable[None]]

# Work of this process in progress, so the resume job doesn't start it a second time here. Other
# processes are kept out by the PostgreSQL advisory locks the work itself takes.
_active: set[tuple[str, UUID]] = set()


def start(runtime: Runtime, kind: str, run_id: UUID, work: Work) -> None:
    if (kind, run_id) in _active:
        return
    _active.add((kind, run_id))

    async def tracked() -> None:
        try:
            await work(runtime, run_id)
        finally:
            _active.discard((kind, run_id))

    runtime.spawn(f"{kind}-{run_id}", tracked())


def start_calculation(runtime: Runtime, run_id: UUID) -> None:
    start(runtime, "calculation", run_id, calculation.calculate_run)


def start_instruction(runtime: Runtime, run_id: UUID) -> None:
    start(runtime, "instruction", run_id, instruction.instruct_run)


async def resume_unfinished(runtime: Runtime) -> None:
    """DRAFT runs are calculated and APPROVED runs instructed, whoever was doing it died."""
    async with runtime.pool.acquire() as conn:
        drafts = await store.runs_in_state(conn, RunState.DRAFT)
        approved = await store.runs_in_state(conn, RunState.APPROVED)
    for run_id in drafts:
        start_calculation(runtime, run_id)
    for run_id in approved:
        start_instruction(runtime, run_id)


async def reconcile_runs(runtime: Runtime) -> None:
    """An instructed run whose every line has its final status (PAID, FAILED, UNCLAIMED) is RECONCILED."""
    async with runtime.pool.acquire() as conn:
        done = await store.runs_fully_reported(conn)
    for run_id in done:
        ctx = service.Context(SYSTEM, f"reconciliation-{run_id}", runtime.settings)  # type: ignore[arg-type]
        try:
            async with runtime.transaction() as conn:
                await service.move(conn, run_id, RunState.INSTRUCTED, RunState.RECONCILED, ctx)
                await store.compact_tallies(conn, run_id)
            log.info("run.reconciled", run_id=str(run_id))
        except WrongState:
            pass  # another replica got there first


async def close_claim_windows(runtime: Runtime) -> None:
    """A PSP that never reports on a line does not leave its run INSTRUCTED forever: once the run's
    claim window has closed (``domain.claim_window_closes``), the lines it said nothing of are
    UNCLAIMED, and the run reconciles. A status that still comes later is a contradiction: the
    first word stands (events.on_status)."""
    settings: Settings = runtime.settings  # type: ignore[assignment]
    grace = timedelta(hours=settings.unclaimed_grace_hours)
    now = datetime.now(UTC)
    async with runtime.pool.acquire() as conn:
        runs = await store.instructed_runs(conn)
    for run in runs:
        closes = domain.claim_window_closes(
            run["available_from"], run["claim_until"], run["instructed_at"], grace
        )
        if closes > now:
            continue
        async with runtime.transaction() as conn:
            lines = await store.mark_unclaimed(conn, run["run_id"], reason=domain.CLAIM_WINDOW_CLOSED, at=now)
        if lines:
            log.info("run.claim_window_closed", run_id=str(run["run_id"]), unclaimed_lines=lines)


async def schedule(runtime: Runtime) -> None:
    settings: Settings = runtime.settings  # type: ignore[assignment]
    runtime.every(settings.resume_interval_seconds, resume_unfinished)
    runtime.every(settings.reconcile_interval_seconds, reconcile_runs)
    runtime.every(settings.claim_window_interval_seconds, close_claim_windows)
