"""Eligibility metrics: the coverage funnel read from the database, decision and run counters, and
how long a registry change takes to become a decision.

The funnel is the one GET /v1/coverage serves (``views.coverage``), without the commune: Prometheus
labels stay bounded (programme, period, province, sex of the head, poverty level, stage).
"""

from collections.abc import Iterable
from datetime import UTC, datetime

from krousar_common.metrics import GAUGE_REFRESH_BUSY_SHARE, DatabaseGauges
from krousar_common.runtime import Runtime
from prometheus_client import Counter, Histogram

from eligibility import store, views

FUNNEL = DatabaseGauges(
    "krousar_eligibility_households",
    "Coverage funnel per programme and province for the programme's current payment (period):"
    " stage is registered, poor (card in force), eligible (all rules but enrolment), enrolled"
    " (payable), instructed, paid, failed or unclaimed.",
    ["programme", "period", "province", "stage"],
)
FUNNEL_BY_HEAD_SEX = DatabaseGauges(
    "krousar_eligibility_households_by_head_sex",
    "The coverage funnel of krousar_eligibility_households, nationally, by sex of the household head.",
    ["programme", "period", "head_sex", "stage"],
)
FUNNEL_BY_POVERTY_LEVEL = DatabaseGauges(
    "krousar_eligibility_households_by_poverty_level",
    "The coverage funnel of krousar_eligibility_households by poverty level of the household"
    " (POOR_1, POOR_2, NOT_POOR, or NONE when not assessed).",
    ["programme", "period", "province", "poverty_level", "stage"],
)
ENROLLED_AMOUNT = DatabaseGauges(
    "krousar_eligibility_enrolled_amount_riel",
    "Riel the enrolled (payable) households are entitled to for the programme's current payment.",
    ["programme", "period", "province"],
)
DECISIONS_PUBLISHED = Counter(
    "krousar_eligibility_decisions_published_total",
    "Decisions published because they changed, by what triggered them (change or evaluation).",
    ["trigger"],
)
EVALUATION_SECONDS = Histogram(
    "krousar_eligibility_evaluation_duration_seconds",
    "Duration of full evaluations (every household for one or more programmes).",
    buckets=(0.1, 0.5, 1, 5, 10, 30, 60, 120, 300, 600),
)
DECISION_LATENCY = Histogram(
    "krousar_eligibility_decision_latency_seconds",
    "From a registry household event (its CloudEvents time: a registration, an assessment, a card"
    " change) to the commit of the decisions made on it.",
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600),
)
STAGES = ("registered", "poor", "eligible", "enrolled", "instructed", "paid", "failed", "unclaimed")
NO_PAYMENT = "none"  # the period label of a programme that is not running


def observe_decision_latency(event_times: Iterable[datetime]) -> None:
    now = datetime.now(UTC)
    for event_time in event_times:
        DECISION_LATENCY.observe(max(0.0, (now - event_time).total_seconds()))


async def refresh(runtime: Runtime) -> None:
    funnel: list[tuple[tuple[str, ...], float]] = []
    by_sex: list[tuple[tuple[str, ...], float]] = []
    by_level: list[tuple[tuple[str, ...], float]] = []
    amounts: list[tuple[tuple[str, ...], float]] = []
    async with runtime.pool.acquire() as conn:
        for programme in await store.load_programmes(conn):
            key, day = await views.current_payment(conn, programme)
            rows = await store.coverage(conn, programme.code, key, day, None)
            labels = (programme.code, key or NO_PAYMENT)
            for province, stages in views.funnel(rows, lambda r: r["province_code"]).items():
                funnel += [((*labels, province, stage), stages[stage]) for stage in STAGES]
                amounts.append(((*labels, province), stages["amount_riel"]))
            for female, stages in views.funnel(rows, lambda r: r["female_headed"]).items():
                by_sex += [((*labels, "F" if female else "M", stage), stages[stage]) for stage in STAGES]
            by_province_and_level = views.funnel(rows, lambda r: (r["province_code"], r["poverty_level"]))
            for (province, level), stages in by_province_and_level.items():
                by_level += [((*labels, province, level, stage), stages[stage]) for stage in STAGES]
    FUNNEL.replace(funnel)
    FUNNEL_BY_HEAD_SEX.replace(by_sex)
    FUNNEL_BY_POVERTY_LEVEL.replace(by_level)
    ENROLLED_AMOUNT.replace(amounts)


async def schedule(runtime: Runtime) -> None:
    runtime.every(runtime.settings.coverage_refresh_seconds, refresh, max_busy_share=GAUGE_REFRESH_BUSY_SHARE)  # type: ignore[attr-defined]
