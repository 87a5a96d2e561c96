"""Eligibility metrics: the coverage funnel read from the database, decision and run counters."""

from krousar_common.metrics import DatabaseGauges
from krousar_common.runtime import Runtime
from prometheus_client import Counter, Histogram

from eligibility import evaluation, store

FUNNEL = DatabaseGauges(
    "krousar_eligibility_households",
    "Coverage funnel per programme and province for the programme's current payment: stage is"
    " registered, poor (card in force), eligible (all rules but enrolment) or enrolled (payable).",
    ["programme", "province", "stage"],
)
HEAD_SEX = DatabaseGauges(
    "krousar_eligibility_enrolled_households_by_head_sex",
    "Enrolled (payable) households per programme by sex of the household head.",
    ["programme", "head_sex"],
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
STAGES = ("registered", "poor", "eligible", "enrolled")


async def refresh(runtime: Runtime) -> None:
    funnel, by_sex = [], []
    async with runtime.pool.acquire() as conn:
        day = await evaluation.current_day(conn)
        for programme in await store.load_programmes(conn):
            keys = await store.payment_keys_of(conn, programme.code)
            first_day = programme.calendar.first_day(min(keys)) if keys else day
            rows = await store.coverage(conn, programme.code, first_day, None)
            funnel += _by_province(programme.code, rows)
            by_sex += _by_head_sex(programme.code, rows)
    FUNNEL.replace(funnel)
    HEAD_SEX.replace(by_sex)


def _by_province(code: str, rows: list) -> list[tuple[tuple[str, ...], float]]:
    totals: dict[tuple[str, str], int] = {}
    for row in rows:
        for stage in STAGES:
            totals[row["province_code"], stage] = totals.get((row["province_code"], stage), 0) + row[stage]
    return [((code, province, stage), value) for (province, stage), value in totals.items()]


def _by_head_sex(code: str, rows: list) -> list[tuple[tuple[str, ...], float]]:
    totals = {"F": 0, "M": 0}
    for row in rows:
        totals["F" if row["female_headed"] else "M"] += row["enrolled"]
    return [((code, sex), value) for sex, value in totals.items()]


async def schedule(runtime: Runtime) -> None:
    runtime.every(runtime.settings.coverage_refresh_seconds, refresh)  # type: ignore[attr-defined]
