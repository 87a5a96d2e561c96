"""HTTP routes that read a run in detail: its lines, the households left out, the reconciliation
report (JSON, CSV), bank exports (CSV, ISO 20022 pain.001) and one household's payments."""

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID

import asyncpg
from fastapi import APIRouter, Query
from fastapi.encoders import jsonable_encoder
from fastapi.responses import Response, StreamingResponse
from krousar_common.events.payments import RunState
from krousar_common.runtime import Runtime
from krousar_common.web import Conn, RuntimeDep

from payments import reconciliation, service, store
from payments.api import Reader
from payments.config import Settings
from payments.errors import NotExportable
from payments.exports import csv_format, pain001
from payments.models import HouseholdPayments, LeftOutPage, LinePage

router = APIRouter(prefix="/v1", tags=["reports"])
EXPORTABLE = (RunState.APPROVED, RunState.INSTRUCTED, RunState.RECONCILED)
CHUNK = 2000


def line_view(row: asyncpg.Record) -> dict[str, Any]:
    """A line with its state as people see it (INSTRUCTED once instructed, until the PSP answers)."""
    return {**dict(row), "status": row["state"]}


@router.get("/runs/{run_id}/lines", response_model=LinePage)
async def list_lines(
    run_id: UUID,
    conn: Conn,
    principal: Reader,
    household_id: UUID | None = None,
    status: str | None = None,
    cursor: Annotated[UUID | None, Query(description="next_cursor of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """Payment lines with their arithmetic (terms and explanation) and status."""
    await service.get_run_or_raise(conn, run_id)
    filters = {"household_id": household_id, "state": status}
    lines = await store.list_lines(
        conn, run_id, filters={k: v for k, v in filters.items() if v is not None}, after=cursor, limit=limit
    )
    next_cursor = lines[-1]["payment_id"] if len(lines) == limit else None
    return jsonable_encoder({"items": [line_view(r) for r in lines], "next_cursor": next_cursor})


@router.get("/runs/{run_id}/left-out", response_model=LeftOutPage)
async def list_left_out(
    run_id: UUID,
    conn: Conn,
    principal: Reader,
    reason: str | None = None,
    cursor: Annotated[UUID | None, Query(description="next_cursor of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """Households the run did not pay, with the reason (counts by reason: GET /v1/runs/{id})."""
    await service.get_run_or_raise(conn, run_id)
    rows = await store.list_left_out(conn, run_id, reason=reason, after=cursor, limit=limit)
    next_cursor = rows[-1]["household_id"] if len(rows) == limit else None
    return jsonable_encoder({"items": [dict(r) for r in rows], "next_cursor": next_cursor})


async def _report(conn: asyncpg.Connection, run_id: UUID) -> dict[str, Any]:
    run = await service.get_run_or_raise(conn, run_id)
    return reconciliation.build(run, await store.reconciliation_rows(conn, run_id))


@router.get("/runs/{run_id}/reconciliation")
async def reconciliation_report(run_id: UUID, conn: Conn, principal: Reader) -> dict[str, Any]:
    """Expected, paid, failed, unclaimed and pending riel and households by province, location
    category and poverty level (and rolled up by each)."""
    return await _report(conn, run_id)


@router.get("/runs/{run_id}/reconciliation.csv")
async def reconciliation_csv(run_id: UUID, conn: Conn, principal: Reader) -> Response:
    body = reconciliation.to_csv(await _report(conn, run_id))
    return _attachment(body, "text/csv", f"reconciliation-{run_id}.csv")


def _attachment(body: Any, media_type: str, name: str) -> Any:
    headers = {"Content-Disposition": f'attachment; filename="{name}"'}
    if isinstance(body, str):
        return Response(body, media_type=media_type, headers=headers)
    return StreamingResponse(body, media_type=media_type, headers=headers)


async def _exportable_run(runtime: Runtime, run_id: UUID) -> tuple[asyncpg.Record, int, int]:
    async with runtime.pool.acquire() as conn:
        run = await service.get_run_or_raise(conn, run_id)
        if run["state"] not in EXPORTABLE:
            raise NotExportable(f"run {run_id} is {run['state']}: only an approved run can be exported")
        counts = await store.status_counts(conn, run_id)
    live = [c for c in counts if c["status"] != "CANCELLED"]
    return run, sum(c["lines"] for c in live), sum(c["amount_riel"] for c in live)


async def _stream(
    runtime: Runtime, run_id: UUID, head: str, render: Callable[[list[asyncpg.Record]], str], foot: str
) -> AsyncIterator[str]:
    """The run's lines in payment id order, rendered in chunks: a national run never sits in memory."""
    yield head
    async with runtime.pool.acquire() as conn, conn.transaction():
        chunk: list[asyncpg.Record] = []
        async for line in conn.cursor(store.EXPORT_SQL, run_id, prefetch=CHUNK):
            chunk.append(line)
            if len(chunk) == CHUNK:
                yield render(chunk)
                chunk = []
        yield render(chunk)
    yield foot


@router.get("/runs/{run_id}/export.csv")
async def export_csv(run_id: UUID, runtime: RuntimeDep, principal: Reader) -> Response:
    """The approved run as CSV: one row per payment line (payee, channel, account, amount)."""
    run, _, _ = await _exportable_run(runtime, run_id)
    stream = _stream(
        runtime,
        run_id,
        csv_format.rows_to_csv(run, [], header=True),
        lambda lines: csv_format.rows_to_csv(run, lines, header=False),
        "",
    )
    return _attachment(stream, "text/csv", f"run-{run_id}.csv")


@router.get("/runs/{run_id}/export.xml")
async def export_pain001(run_id: UUID, runtime: RuntimeDep, principal: Reader) -> Response:
    """The approved run as an ISO 20022 pain.001.001.03 customer credit transfer initiation."""
    settings: Settings = runtime.settings  # type: ignore[assignment]
    run, count, total = await _exportable_run(runtime, run_id)
    debtor = {
        "name": settings.debtor_name,
        "account": settings.debtor_account,
        "agent": settings.debtor_agent,
    }
    head = pain001.header(
        run, transactions=count, total_riel=total, created_at=datetime.now(UTC), debtor=debtor
    )
    stream = _stream(
        runtime,
        run_id,
        head,
        lambda lines: "".join(pain001.transaction(run, r) for r in lines),
        pain001.FOOTER,
    )
    return _attachment(stream, "application/xml", f"run-{run_id}.pain.001.xml")


@router.get("/households/{household_id}/payments", response_model=HouseholdPayments, tags=["households"])
async def household_payments(household_id: UUID, conn: Conn, principal: Reader) -> dict[str, Any]:
    """Why was this household paid, or not: its payment lines and the runs that left it out."""
    lines = await store.household_payments(conn, household_id)
    left_out = await store.household_left_out(conn, household_id)
    return jsonable_encoder(
        {
            "household_id": household_id,
            "payments": [line_view(r) for r in lines],
            "left_out": [dict(r) for r in left_out],
        }
    )
