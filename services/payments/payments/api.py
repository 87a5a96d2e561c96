"""HTTP routes of payment runs: create, read, approve, cancel. Parse, check the role, call the use
case, shape the answer."""

import asyncio
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID

import asyncpg
from fastapi import APIRouter, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from krousar_common.auth import Principal, require_roles
from krousar_common.events.payments import RunState
from krousar_common.idempotency import idempotent
from krousar_common.runtime import Runtime
from krousar_common.web import Conn, RuntimeDep
from pydantic import AfterValidator

from payments import calculation, domain, jobs, progress, service, store
from payments.models import Cancellation, RunCreate, RunPage, RunRead

router = APIRouter(prefix="/v1", tags=["runs"])

Operator = Annotated[Principal, require_roles("payment_operator")]
Approver = Annotated[Principal, require_roles("payment_approver")]
Canceller = Annotated[Principal, require_roles("payment_operator", "payment_approver")]
Reader = Annotated[Principal, require_roles("payment_operator", "payment_approver", "viewer")]
Wait = Annotated[bool, Query(description="answer only once the calculation (or instruction) has finished")]
WAIT_SECONDS = 600


def _in_utc(value: datetime) -> datetime:
    # asyncpg sends a timestamp in UTC: one whose offset carries it past the year 9999 has none.
    try:
        return value.astimezone(UTC)
    except OverflowError as exc:
        raise ValueError("is out of range") from exc


Cursor = Annotated[datetime, AfterValidator(_in_utc)]


def context(request: Request, principal: Principal) -> service.Context:
    return service.Context.of(principal, request.state.correlation_id, request.app.state.settings)


async def run_view(runtime: Runtime, conn: asyncpg.Connection, run: asyncpg.Record) -> dict[str, Any]:
    counts = await status_counts(conn, run)
    live = await progress.read(runtime.redis, run["run_id"])
    in_progress = run["state"] in (RunState.DRAFT, RunState.APPROVED)
    return {
        **dict(run),
        "over_budget": domain.over_budget(run["amount_riel"], run["budget_ceiling_riel"]),
        "totals": {
            "by_group": run["totals"],
            **{f"by_{d.removesuffix('_code')}": domain.roll_up(run["totals"], d) for d in DIMENSIONS},
        },
        "statuses": {r["status"]: dict(r) for r in counts},
        "progress": live if in_progress else None,
    }


DIMENSIONS = ("province_code", "location_category", "poverty_level")

# Counting a national run's lines by status reads 700,000 rows (seconds of PostgreSQL), and people
# watch a run settle by asking for it every second: the counts of a large run are kept a while,
# and anew whenever its state changes. A run that pays each household one line (any programme of
# rates), or whose lines are all in one state (calculated, cancelled, every line paid), is answered
# from its tallies: its households by state are then its lines by state, or all of them.
CACHED_FROM_LINES = 50_000
_counted: dict[tuple[UUID, str], tuple[float, list[Mapping[str, Any]]]] = {}


async def status_counts(conn: asyncpg.Connection, run: asyncpg.Record) -> list[Mapping[str, Any]]:
    if run["lines"] < CACHED_FROM_LINES:
        return await store.status_counts(conn, run["run_id"])
    tallied = await store.tallied_states(conn, run["run_id"])
    if run["lines"] == run["households"]:
        return [{**dict(t), "households": t["lines"]} for t in tallied]
    if len(tallied) == 1:
        return [{**dict(tallied[0]), "households": run["households"]}]
    key, now = (run["run_id"], run["state"]), time.monotonic()
    keep_for = min(max(run["lines"] / 50_000, 1.0), 15.0)  # a national run: 14 s
    cached = _counted.get(key)
    if cached is not None and now - cached[0] < keep_for:
        return cached[1]
    counts = await store.status_counts(conn, run["run_id"])
    if len(_counted) >= 256:
        _counted.clear()
    _counted[key] = (now, counts)
    return counts


async def respond(runtime: Runtime, run_id: UUID, status: int = 200, **headers: str) -> JSONResponse:
    async with runtime.pool.acquire() as conn:
        run = await service.get_run_or_raise(conn, run_id)
        body = RunRead.model_validate(await run_view(runtime, conn, run)).model_dump(mode="json")
    return JSONResponse(body, status_code=status, headers=headers or None)


async def wait_while(runtime: Runtime, run_id: UUID, state: RunState) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        async with runtime.pool.acquire() as conn:
            run = await store.get_run(conn, run_id)
        if run is None or run["state"] != state:
            return
        await asyncio.sleep(0.2)


@router.post("/runs", status_code=202, response_model=RunRead)
async def create_run(
    body: RunCreate, request: Request, runtime: RuntimeDep, principal: Operator, wait: Wait = False
) -> JSONResponse:
    """Create a run for (programme, period) or (top-up, payment date) and calculate it.

    The answer comes at once (202, state DRAFT, progress live in GET /v1/runs/{id}); with
    ``wait=true`` once the run is CALCULATED. A retry with the same ``Idempotency-Key`` returns
    the same run. 409 while another calculation of the same programme and period is running.
    """
    ctx = context(request, principal)

    async def handle() -> JSONResponse:
        async with runtime.pool.acquire() as conn:
            plan = await service.plan_run(conn, body.programme_code, body.key, ctx)
        lock = await calculation.claim_lock(runtime, plan)
        try:
            async with runtime.transaction() as conn:
                await service.create_run(conn, plan, ctx)
        except BaseException:
            await lock.release()
            raise
        jobs.start_calculation(runtime, plan["run_id"])
        if wait:
            await wait_while(runtime, plan["run_id"], RunState.DRAFT)
        return await respond(runtime, plan["run_id"], 202, Location=f"/v1/runs/{plan['run_id']}")

    return await idempotent(request, principal, handle)


@router.get("/runs", response_model=RunPage)
async def list_runs(
    runtime: RuntimeDep,
    conn: Conn,
    principal: Reader,
    programme_code: str | None = None,
    period: str | None = None,
    state: RunState | None = None,
    cursor: Annotated[Cursor | None, Query(description="next_cursor of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> dict[str, Any]:
    filters = {"programme_code": programme_code, "period": period, "state": state}
    runs = await store.list_runs(
        conn, filters={k: v for k, v in filters.items() if v is not None}, before=cursor, limit=limit
    )
    items = [await run_view(runtime, conn, r) for r in runs]
    return jsonable_encoder(
        {"items": items, "next_cursor": runs[-1]["created_at"] if len(runs) == limit else None}
    )


@router.get("/runs/{run_id}", response_model=RunRead)
async def get_run(run_id: UUID, runtime: RuntimeDep, principal: Reader) -> JSONResponse:
    """The run: state, totals, households left out by reason, lines by status, live progress."""
    return await respond(runtime, run_id)


@router.post("/runs/{run_id}/approval", response_model=RunRead)
async def approve_run(
    run_id: UUID, request: Request, runtime: RuntimeDep, principal: Approver, wait: Wait = False
) -> JSONResponse:
    """Approve a CALCULATED run (maker-checker: not by its creator; not over the budget ceiling).
    Its instructions then go out to the PSP; ``wait=true`` answers once all are instructed. A retry
    with the same ``Idempotency-Key`` answers the first approval again."""
    ctx = context(request, principal)

    async def handle() -> JSONResponse:
        async with runtime.transaction() as conn:
            await service.approve_run(conn, run_id, ctx)
        jobs.start_instruction(runtime, run_id)
        if wait:
            await wait_while(runtime, run_id, RunState.APPROVED)
        return await respond(runtime, run_id)

    return await idempotent(request, principal, handle)


@router.post("/runs/{run_id}/cancellation", response_model=RunRead)
async def cancel_run(
    run_id: UUID, body: Cancellation, request: Request, runtime: RuntimeDep, principal: Canceller
) -> JSONResponse:
    """Cancel a run before approval: its lines are released, its households payable again. A retry
    with the same ``Idempotency-Key`` answers the first cancellation again."""

    async def handle() -> JSONResponse:
        async with runtime.transaction() as conn:
            await service.cancel_run(conn, run_id, body.reason, context(request, principal))
        return await respond(runtime, run_id)

    return await idempotent(request, principal, handle)
