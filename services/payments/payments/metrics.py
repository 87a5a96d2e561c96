"""Payments metrics: run gauges read from the database, pipeline counters and durations."""

from krousar_common.metrics import DatabaseGauges
from krousar_common.runtime import Runtime
from prometheus_client import Counter, Histogram

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
HOUSEHOLDS_CALCULATED = Counter(
    "krousar_payments_households_calculated_total", "Households through the calculator in runs."
)
LINES_INSTRUCTED = Counter("krousar_payments_lines_instructed_total", "Payment lines instructed.")
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

RUNS_SQL = "SELECT programme_code, state, count(*), sum(households), sum(amount_riel) FROM runs GROUP BY 1, 2"
OPEN_LINES_SQL = """
SELECT l.programme_code, l.province_code, l.state, count(*), sum(l.amount_riel)
FROM line_states l JOIN runs r USING (run_id)
WHERE r.state IN ('CALCULATED', 'APPROVED', 'INSTRUCTED')
GROUP BY 1, 2, 3
"""


async def refresh(runtime: Runtime) -> None:
    async with runtime.pool.acquire() as conn:
        runs = await conn.fetch(RUNS_SQL)
        lines = await conn.fetch(OPEN_LINES_SQL)
    RUNS.replace((tuple(r[:2]), r[2]) for r in runs)
    RUN_HOUSEHOLDS.replace((tuple(r[:2]), r[3]) for r in runs)
    RUN_AMOUNT.replace((tuple(r[:2]), r[4]) for r in runs)
    OPEN_LINES.replace((tuple(r[:3]), r[3]) for r in lines)
    OPEN_LINES_AMOUNT.replace((tuple(r[:3]), r[4]) for r in lines)


async def schedule(runtime: Runtime) -> None:
    runtime.every(15, refresh)
