"""``krousar-eligibility`` — commands for operators.

krousar-eligibility evaluate                  decide every household again for today (the daily job)
krousar-eligibility evaluate --on 2022-12-01  hold the clock at a day and decide everyone for it
krousar-eligibility status                    the clock, the queue and the latest evaluation runs
krousar-eligibility coverage --programme FAMILY_PACKAGE --format csv > coverage.csv
                                              the coverage funnel by province and commune
"""

import asyncio
import json
from datetime import date
from enum import StrEnum
from typing import Annotated, Any
from uuid import UUID

import asyncpg
import typer
from fastapi.encoders import jsonable_encoder
from krousar_common.db import create_pool
from krousar_common.errors import ServiceError

from eligibility import jobs, store, views
from eligibility.config import Settings

app = typer.Typer(help=__doc__, no_args_is_help=True)


async def _wait_for_run(pool: asyncpg.Pool, settings: Settings, run_id: UUID) -> Any:
    while True:
        # Executed here when no service holds the evaluator lock; otherwise the service runs it.
        await jobs.execute_runs(pool, settings)
        async with pool.acquire() as conn:
            run = await store.get_run(conn, run_id)
        if run["status"] in ("DONE", "FAILED"):
            return run
        await asyncio.sleep(1)


@app.command("evaluate")
def evaluate(
    on: Annotated[str | None, typer.Option(help="hold the clock at this day (YYYY-MM-DD)")] = None,
) -> None:
    """Decide every household for every programme again; changed decisions are published."""

    async def run() -> Any:
        settings = Settings()
        pool = await create_pool(settings.database_url, min_size=1, max_size=4)
        try:
            async with pool.acquire() as conn, conn.transaction():
                run_id = await jobs.set_day(conn, date.fromisoformat(on) if on else None, "cli:evaluate")
            return await _wait_for_run(pool, settings, run_id)
        finally:
            await pool.close()

    result = asyncio.run(run())
    typer.echo(
        f"{result['status']}: {result['households']} households for {result['on_day']},"
        f" {result['decisions_changed']} decisions changed {result['error'] or ''}"
    )
    if result["status"] != "DONE":
        raise typer.Exit(1)


@app.command("status")
def status() -> None:
    async def run() -> tuple[Any, int, list[Any]]:
        conn = await asyncpg.connect(Settings().database_url)
        try:
            runs = await store.latest_runs(conn, 5)
            return await store.get_clock(conn), await store.pending_count(conn), runs
        finally:
            await conn.close()

    clock, pending, runs = asyncio.run(run())
    held = "held" if clock and clock["held"] else "following the calendar"
    typer.echo(f"clock: {clock['day'] if clock else 'not set'} ({held}); households queued: {pending}")
    for r in runs:
        typer.echo(f"  {r['status']:8} {r['on_day']} {r['households']:>8} households {r['reason']}")


class Format(StrEnum):
    json = "json"
    csv = "csv"


@app.command("coverage")
def coverage(
    programme: Annotated[str, typer.Option(help="programme or top-up code")],
    period: Annotated[
        str | None, typer.Option(help="YYYY-MM or a payment date; default: the current payment")
    ] = None,
    province: Annotated[str | None, typer.Option(help="two-digit province code")] = None,
    format: Annotated[Format, typer.Option(help="json, or csv (national, province, commune rows)")] = (
        Format.json
    ),
) -> None:
    """The coverage funnel of GET /v1/coverage, read from the eligibility database."""

    async def run() -> dict[str, Any]:
        conn = await asyncpg.connect(Settings().database_url)
        try:
            return await views.coverage(conn, programme, period=period, province=province)
        finally:
            await conn.close()

    try:
        report = asyncio.run(run())
    except ServiceError as exc:
        typer.echo(exc.detail, err=True)
        raise typer.Exit(1) from exc
    if format is Format.csv:
        typer.echo(views.coverage_csv(report), nl=False)
    else:
        typer.echo(json.dumps(jsonable_encoder(report), indent=2))


if __name__ == "__main__":
    app()
