"""``krousar-payments`` — payment runs from the terminal, through the payments API.

krousar-payments runs create --programme COVID19_CT --period 2024-03 --watch
krousar-payments runs show RUN_ID
krousar-payments runs approve RUN_ID --watch        (another person than the creator)
krousar-payments runs cancel RUN_ID --reason "wrong period"
krousar-payments runs watch RUN_ID                  (progress bar until the run rests)
krousar-payments runs export RUN_ID --format xml --out run.xml
krousar-payments runs reconciliation RUN_ID [--csv out.csv]
krousar-payments runs list [--programme COVID19_CT]

The token comes from KROUSAR_TOKEN (krousar mint-token --role payment_operator), the API from
KROUSAR_PAYMENTS_URL (default http://127.0.0.1:8004).
"""

import time
import uuid
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

app = typer.Typer(help=__doc__, no_args_is_help=True)
runs = typer.Typer(help="Create, follow, approve, cancel and export payment runs.", no_args_is_help=True)
app.add_typer(runs, name="runs")
console = Console()

Url = Annotated[str, typer.Option(envvar="KROUSAR_PAYMENTS_URL", help="payments API")]
Token = Annotated[str, typer.Option(envvar="KROUSAR_TOKEN", help="bearer token (krousar mint-token)")]
DEFAULT_URL = "http://127.0.0.1:8004"
RESTING = {"CALCULATED", "RECONCILED", "CANCELLED"}


def _client(url: str, token: str) -> httpx.Client:
    return httpx.Client(base_url=url, timeout=600, headers={"Authorization": f"Bearer {token}"})


def _checked(response: httpx.Response) -> Any:
    if response.status_code >= 400:
        try:
            detail = response.json().get("detail")
        except ValueError:
            detail = response.text
        console.print(f"[red]{response.status_code}[/red] {detail}")
        raise typer.Exit(1)
    return response.json()


def _riel(amount: int | None) -> str:
    return f"{amount or 0:,} ៛"


@runs.command("create")
def create(
    programme: Annotated[str, typer.Option(help="programme or top-up code, e.g. COVID19_CT")],
    period: Annotated[str | None, typer.Option(help="YYYY-MM (monthly programmes)")] = None,
    payment_date: Annotated[str | None, typer.Option(help="YYYY-MM-DD (top-ups)")] = None,
    idempotency_key: Annotated[str | None, typer.Option(help="retry safely with the same key")] = None,
    watch: Annotated[bool, typer.Option(help="follow the calculation")] = False,
    url: Url = DEFAULT_URL,
    token: Token = "",
) -> None:
    """Create a run and start its calculation."""
    body = {"programme_code": programme, "period": period, "payment_date": payment_date}
    headers = {"Idempotency-Key": idempotency_key or str(uuid.uuid4())}
    with _client(url, token) as client:
        run = _checked(client.post("/v1/runs", json=body, headers=headers))
        console.print(f"run [bold]{run['run_id']}[/bold] {run['state']}")
        if watch:
            run = _follow(client, run["run_id"])
            _print_run(run)


@runs.command("show")
def show(run_id: str, url: Url = DEFAULT_URL, token: Token = "") -> None:
    """A run's state, totals, households left out by reason and lines by status."""
    with _client(url, token) as client:
        _print_run(_checked(client.get(f"/v1/runs/{run_id}")))


@runs.command("list")
def list_runs(
    programme: Annotated[str | None, typer.Option()] = None,
    state: Annotated[str | None, typer.Option()] = None,
    url: Url = DEFAULT_URL,
    token: Token = "",
) -> None:
    params = {k: v for k, v in {"programme_code": programme, "state": state}.items() if v}
    with _client(url, token) as client:
        page = _checked(client.get("/v1/runs", params=params))
    table = Table("run", "programme", "period", "state", "households", "amount", "created by")
    for run in page["items"]:
        table.add_row(
            run["run_id"],
            run["programme_code"],
            run["period"],
            run["state"],
            f"{run['households']:,}",
            _riel(run["amount_riel"]),
            run["created_by"],
        )
    console.print(table)


@runs.command("approve")
def approve(
    run_id: str,
    watch: Annotated[bool, typer.Option(help="follow the instructions and statuses")] = False,
    url: Url = DEFAULT_URL,
    token: Token = "",
) -> None:
    """Approve a CALCULATED run (not your own): its instructions go to the PSP."""
    with _client(url, token) as client:
        run = _checked(client.post(f"/v1/runs/{run_id}/approval"))
        console.print(f"run {run_id} {run['state']} by {run['approved_by']}")
        if watch:
            _print_run(_follow(client, run_id))


@runs.command("cancel")
def cancel(
    run_id: str,
    reason: Annotated[str, typer.Option(help="why (kept with the run)")],
    url: Url = DEFAULT_URL,
    token: Token = "",
) -> None:
    """Cancel a run before approval."""
    with _client(url, token) as client:
        run = _checked(client.post(f"/v1/runs/{run_id}/cancellation", json={"reason": reason}))
    console.print(f"run {run_id} {run['state']}: {run['cancel_reason']}")


@runs.command("watch")
def watch(run_id: str, url: Url = DEFAULT_URL, token: Token = "") -> None:
    """Progress bar of the calculation, the instructions and the PSP's statuses, until the run
    rests (CALCULATED, RECONCILED or CANCELLED)."""
    with _client(url, token) as client:
        _print_run(_follow(client, run_id))


def _follow(client: httpx.Client, run_id: str) -> dict[str, Any]:
    columns = (TextColumn("{task.description:<24}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console) as bar:
        task = bar.add_task("waiting", total=None)
        while True:
            run = _checked(client.get(f"/v1/runs/{run_id}"))
            description, done, total = _stage(run)
            bar.update(task, description=description, completed=done, total=total)
            if run["state"] in RESTING:
                return run
            time.sleep(0.5)


def _stage(run: dict[str, Any]) -> tuple[str, int, int | None]:
    """What the run is doing now, and how far it is."""
    if run["state"] == "INSTRUCTED":
        reported = sum(s["lines"] for k, s in run["statuses"].items() if k in ("PAID", "FAILED", "UNCLAIMED"))
        return "statuses from the PSP", reported, run["lines"]
    if run["state"] in RESTING:  # whatever was under way is done: a full bar of the run's lines
        return run["state"].lower(), run["lines"], run["lines"]
    live = run.get("progress")
    if live:
        return live["phase"].lower(), live["done"], live["total"]
    return run["state"].lower(), 0, None


def _print_run(run: dict[str, Any]) -> None:
    console.print(
        f"[bold]{run['programme_code']} {run['period']}[/bold] run {run['run_id']}:"
        f" [bold]{run['state']}[/bold]"
        f" — {run['households']:,} households, {run['lines']:,} lines, {_riel(run['amount_riel'])}"
        f" (available {run['available_from']} to {run['claim_until']})"
    )
    if run["over_budget"]:
        console.print(f"[red]over the budget ceiling of {_riel(run['budget_ceiling_riel'])}[/red]")
    for dimension in ("by_province", "by_location_category", "by_poverty_level"):
        _print_totals(dimension, run["totals"][dimension])
    if run["left_out_reasons"]:
        table = Table("left out because", "households", title=f"{run['households_left_out']:,} left out")
        for reason, count in run["left_out_reasons"].items():
            table.add_row(reason, f"{count:,}")
        console.print(table)
    if run["statuses"]:
        table = Table("line status", "lines", "households", "amount")
        for status, count in run["statuses"].items():
            table.add_row(
                status, f"{count['lines']:,}", f"{count['households']:,}", _riel(count["amount_riel"])
            )
        console.print(table)


def _print_totals(dimension: str, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    key = next(k for k in rows[0] if k not in ("households", "amount_riel"))
    table = Table(key, "households", "amount", title=dimension.replace("_", " "))
    for row in rows:
        table.add_row(str(row[key]), f"{row['households']:,}", _riel(row["amount_riel"]))
    console.print(table)


@runs.command("export")
def export(
    run_id: str,
    out: Annotated[Path, typer.Option(help="file to write")],
    format: Annotated[str, typer.Option(help="csv or xml (ISO 20022 pain.001.001.03)")] = "csv",
    url: Url = DEFAULT_URL,
    token: Token = "",
) -> None:
    """Write an approved run as a bank file (CSV or pain.001 XML)."""
    if format not in ("csv", "xml"):
        raise typer.BadParameter("format must be csv or xml")
    with _client(url, token) as client, client.stream("GET", f"/v1/runs/{run_id}/export.{format}") as resp:
        if resp.status_code >= 400:
            resp.read()
            _checked(resp)
        with out.open("wb") as file:
            for chunk in resp.iter_bytes():
                file.write(chunk)
    console.print(f"wrote {out} ({out.stat().st_size:,} bytes)")


@runs.command("reconciliation")
def reconciliation(
    run_id: str,
    csv: Annotated[Path | None, typer.Option(help="write the CSV report here")] = None,
    url: Url = DEFAULT_URL,
    token: Token = "",
) -> None:
    """Expected, paid, failed, unclaimed and pending riel and households by province."""
    with _client(url, token) as client:
        if csv is not None:
            response = client.get(f"/v1/runs/{run_id}/reconciliation.csv")
            if response.status_code >= 400:
                _checked(response)
            csv.write_bytes(response.content)
            console.print(f"wrote {csv}")
            return
        report = _checked(client.get(f"/v1/runs/{run_id}/reconciliation"))
    table = Table("province", "expected", "paid", "failed", "unclaimed", "pending", title=f"run {run_id}")
    for row in [*report["by_province"], {"province_code": "TOTAL", **report["total"]}]:
        table.add_row(row["province_code"], *(_riel(row[f"{m}_riel"]) for m in MEASURES))
    console.print(table)


MEASURES = ("expected", "paid", "failed", "unclaimed", "pending")


if __name__ == "__main__":
    app()
