"""Payments metrics: run and payment gauges read from the database, pipeline counters and durations."""

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from krousar_common.metrics import GAUGE_REFRESH_BUSY_SHARE, DatabaseGauges
from krousar_common.runtime import Runtime
from prometheus_client import Counter, Histogram

from payments import domain
from payments.config import Settings

RUNS = DatabaseGauges("krousar_payments_runs", "Payment runs by programme and state.", ["programme", "state"])
RUN_HOUSEHOLDS = DatabaseGauges(
    "krousar_payments_run_households",
    "Households paid by runs, by programme and run state.",
    ["programme", "state"],
)
RUN_AMOUNT = DatabaseGauges(
    "krousar_payments_run_amount_riel",
    "Riel in runs, by programme and run state.",
    ["programme", "state"],
)
OLDEST_RUN_AGE = DatabaseGauges(
    "krousar_payments_oldest_run_age_seconds",
    "Time since the oldest run in DRAFT was created, in APPROVED approved, in INSTRUCTED instructed.",
    ["programme", "state"],
)
RUNS_PAST_CLAIM_WINDOW = DatabaseGauges(
    "krousar_payments_runs_past_claim_window",
    "INSTRUCTED runs whose claim window and the PSP's grace have closed: they should have reconciled.",
    ["programme"],
)
OPEN_LINES = DatabaseGauges(
    "krousar_payments_open_run_lines",
    "Payment lines of runs not yet reconciled, by programme, province and line status.",
    ["programme", "province", "status"],
)
OPEN_LINES_AMOUNT = DatabaseGauges(
    "krousar_payments_open_run_amount_riel",
    "Riel in payment lines of runs not yet reconciled, by programme, province and line status.",
    ["programme", "province", "status"],
)
PERIOD_LINES = DatabaseGauges(
    "krousar_payments_period_lines",
    "Payment lines of the current and previous payment (period) of each programme, reconciled runs"
    " included, by province and line status.",
    ["programme", "period", "province", "status"],
)
PERIOD_AMOUNT = DatabaseGauges(
    "krousar_payments_period_amount_riel",
    "Riel in the payment lines of krousar_payments_period_lines: status PAID is the riel paid.",
    ["programme", "period", "province", "status"],
)
HOUSEHOLDS_CALCULATED = Counter(
    "krousar_payments_households_calculated_total",
    "Households through the calculator in runs, by programme.",
    ["programme"],
)
LINES_INSTRUCTED = Counter(
    "krousar_payments_lines_instructed_total", "Payment lines instructed, by programme.", ["programme"]
)
STATUSES = Counter(
    "krousar_payments_statuses_total",
    "PSP statuses received, by status and outcome (applied, duplicate, contradicting).",
    ["status", "outcome"],
)
CALCULATION_DURATION = Histogram(
    "krousar_payments_calculation_duration_seconds",
    "Duration of run calculations.",
    buckets=(0.1, 0.5, 1, 5, 10, 30, 60, 120, 300),
)
INSTRUCTION_DURATION = Histogram(
    "krousar_payments_instruction_duration_seconds",
    "Duration of run instructions.",
    buckets=(0.1, 0.5, 1, 5, 10, 30, 60, 120, 300),
)

RUNS_SQL = """
SELECT programme_code, state, count(*) AS runs, sum(households) AS households, sum(amount_riel) AS riel,
       extract(epoch FROM now() - min(CASE state WHEN 'DRAFT' THEN created_at
                                                 WHEN 'APPROVED' THEN approved_at
                                                 WHEN 'INSTRUCTED' THEN instructed_at END)) AS oldest_age
FROM runs GROUP BY 1, 2
"""
INSTRUCTED_RUNS_SQL = (
    "SELECT programme_code, available_from, claim_until, instructed_at FROM runs WHERE state = 'INSTRUCTED'"
)
# Lines by state come from line_tallies (kept as the lines change), not from counting lines: a
# national payment is 700,000 of them.
OPEN_LINES_SQL = """
SELECT r.programme_code, t.province_code, t.state, sum(t.lines), sum(t.amount_riel)
FROM line_tallies t JOIN runs r USING (run_id)
WHERE r.state IN ('CALCULATED', 'APPROVED', 'INSTRUCTED')
GROUP BY 1, 2, 3 HAVING sum(t.lines) <> 0
"""
PROGRAMMES_SQL = "SELECT DISTINCT code FROM programme_versions"
# The two latest periods of each programme's runs, every run of them counted.
PERIOD_LINES_SQL = """
WITH periods AS (
    SELECT programme_code, period
    FROM (SELECT programme_code, period,
                 rank() OVER (PARTITION BY programme_code ORDER BY period DESC) AS recency
          FROM runs WHERE state <> 'CANCELLED' GROUP BY 1, 2) ranked
    WHERE recency <= 2
)
SELECT r.programme_code, r.period, t.province_code, t.state, sum(t.lines), sum(t.amount_riel)
FROM periods p JOIN runs r USING (programme_code, period) JOIN line_tallies t USING (run_id)
GROUP BY 1, 2, 3, 4 HAVING sum(t.lines) <> 0
"""


def runs_past_claim_window(
    programmes: Iterable[str], instructed: Iterable[Mapping[str, Any]], *, now: datetime, grace: timedelta
) -> list[tuple[Sequence[str], int]]:
    """Per programme (0 included), its INSTRUCTED runs whose claim window has closed as the job that
    makes silent lines UNCLAIMED sees it (``domain.claim_window_closes``): that job reconciles them."""
    past = dict.fromkeys(programmes, 0)
    for run in instructed:
        closes = domain.claim_window_closes(
            run["available_from"], run["claim_until"], run["instructed_at"], grace
        )
        if closes <= now:
            past[run["programme_code"]] = past.get(run["programme_code"], 0) + 1
    return [((code,), count) for code, count in past.items()]


def start_run_counters(programmes: Iterable[str]) -> None:
    """Every programme's run counters exist at 0 before its first run (from the programme's version
    event, and again on each refresh after a restart): a series born at its first batch would hide
    that batch from increase(), and PaymentRunStuck matches runs by programme."""
    for code in programmes:
        HOUSEHOLDS_CALCULATED.labels(code)
        LINES_INSTRUCTED.labels(code)


async def refresh(runtime: Runtime) -> None:
    settings: Settings = runtime.settings  # type: ignore[assignment]
    async with runtime.pool.acquire() as conn:
        runs = await conn.fetch(RUNS_SQL)
        instructed = await conn.fetch(INSTRUCTED_RUNS_SQL)
        lines = await conn.fetch(OPEN_LINES_SQL)
        programmes = await conn.fetch(PROGRAMMES_SQL)
    RUNS.replace((tuple(r[:2]), r["runs"]) for r in runs)
    RUN_HOUSEHOLDS.replace((tuple(r[:2]), r["households"]) for r in runs)
    RUN_AMOUNT.replace((tuple(r[:2]), r["riel"]) for r in runs)
    OLDEST_RUN_AGE.replace((tuple(r[:2]), r["oldest_age"]) for r in runs if r["oldest_age"] is not None)
    grace = timedelta(hours=settings.unclaimed_grace_hours)
    past = runs_past_claim_window(
        {r["programme_code"] for r in runs}, instructed, now=datetime.now(UTC), grace=grace
    )
    RUNS_PAST_CLAIM_WINDOW.replace(past)
    OPEN_LINES.replace((tuple(r[:3]), r[3]) for r in lines)
    OPEN_LINES_AMOUNT.replace((tuple(r[:3]), r[4]) for r in lines)
    start_run_counters(r["code"] for r in programmes)


async def refresh_periods(runtime: Runtime) -> None:
    async with runtime.pool.acquire() as conn:
        rows = await conn.fetch(PERIOD_LINES_SQL)
    PERIOD_LINES.replace((tuple(r[:4]), r[4]) for r in rows)
    PERIOD_AMOUNT.replace((tuple(r[:4]), r[5]) for r in rows)


async def schedule(runtime: Runtime) -> None:
    settings: Settings = runtime.settings  # type: ignore[assignment]
    runtime.every(15, refresh, max_busy_share=GAUGE_REFRESH_BUSY_SHARE)
    runtime.every(
        settings.period_metrics_refresh_seconds, refresh_periods, max_busy_share=GAUGE_REFRESH_BUSY_SHARE
    )
