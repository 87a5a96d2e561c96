"""``krousar-registration`` — commands for registry operators.

krousar-registration expire-cards --on 2026-01-01   run the daily card expiry for a date
krousar-registration import round10.csv            upload a round and follow it with a progress bar
krousar-registration generate out.csv -n 1000     synthetic households in the import format
"""

import asyncio
import time
from datetime import date
from pathlib import Path
from typing import Annotated

import httpx
import typer
from krousar_common.auth import Principal
from krousar_common.db import create_pool
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from registration import changes, service
from registration.config import Settings

app = typer.Typer(help=__doc__, no_args_is_help=True)
console = Console()
OPERATOR = Principal(user_id="cli:expire-cards", roles=frozenset({"registry_admin"}))


@app.command("expire-cards")
def expire_cards(
    on: Annotated[str, typer.Option(help="the day to expire for (YYYY-MM-DD)")] = str(date.today()),
) -> None:
    """Expire every ACTIVE card whose validity ended before ON, publishing one event per card."""

    async def run() -> list[str]:
        settings = Settings()
        pool = await create_pool(settings.database_url, min_size=1, max_size=1)
        try:
            async with pool.acquire() as conn, conn.transaction():
                ctx = service.Context(OPERATOR, f"cli-expire-{on}", settings)
                return await changes.expire_cards(conn, date.fromisoformat(on), ctx)
        finally:
            await pool.close()

    expired = asyncio.run(run())
    console.print(f"expired {len(expired)} card(s) on {on}")


@app.command("import")
def import_file(
    path: Path,
    url: Annotated[str, typer.Option(envvar="KROUSAR_REGISTRATION_URL")] = "http://127.0.0.1:8001",
    token: Annotated[
        str, typer.Option(envvar="KROUSAR_TOKEN", help="bearer token (krousar mint-token)")
    ] = "",
) -> None:
    """Upload a round's CSV and show its progress until it finishes; print the errors by row."""
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "text/csv"}
    with httpx.Client(base_url=url, timeout=120, headers=headers) as client, path.open("rb") as file:
        response = client.post("/v1/imports", params={"file_name": path.name}, content=file)  # streamed
        if response.status_code >= 400:
            console.print(f"[red]{response.status_code}[/red] {response.json().get('detail')}")
            raise typer.Exit(1)
        status = _follow(client, response.json()["import_id"])
    console.print(
        f"{status['status']}: {status['households_imported']} imported, "
        f"{status['households_rejected']} rejected. {status.get('message') or ''}"
    )
    for error in status["errors"][:20]:
        console.print(f"  row {error['row']} ({error['household_ref']}) {error['field']}: {error['message']}")
    if status["error_count"] > 20:
        console.print(
            f"  … all {status['error_count']} errors: GET /v1/imports/{status['import_id']}/errors.csv"
        )


def _follow(client: httpx.Client, import_id: str) -> dict:
    columns = (TextColumn("importing"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console) as bar:
        task = bar.add_task("import", total=None)
        while True:
            status = client.get(f"/v1/imports/{import_id}").json()
            if status.get("progress"):
                bar.update(task, completed=status["progress"]["done"], total=status["progress"]["total"])
            if status["status"] != "RUNNING":
                return status
            time.sleep(0.5)


@app.command("generate")
def generate(
    out: Path, households: Annotated[int, typer.Option("-n", "--households")] = 1000, seed: int = 2023
) -> None:
    """Write synthetic households in the import format (see registration.synthetic)."""
    from registration import synthetic

    stats = synthetic.write_csv(out, households, seed=seed)
    console.print(stats)


if __name__ == "__main__":
    app()
