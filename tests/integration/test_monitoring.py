"""Coverage monitoring end to end: the five services in a slice of the stack of their own, a
Prometheus of its own scraping them every second with the repository's rules, and a small population
registered, enrolled and paid through a top-up run. What Prometheus records (coverage ratios, the
funnel by province and poverty level, registry gauges, decision latency, run states, riel paid
after reconciliation, events consumed by type) equals what the databases say.

The slice is the module's own (not the session's services) so that its gauges refresh every second
and its numbers are exactly this population. ``KROUSAR_RENDER_DASHBOARDS=docs/monitoring`` also
renders every dashboard from this Prometheus into that folder (deploy/grafana/render.py).
"""

import asyncio
import contextlib
import csv
import io
import json
import os
import re
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from eligibility import cli
from factories import (
    RURAL_POOR_ANSWERS,
    URBAN_NOT_POOR_ANSWERS,
    make_household,
    make_member,
    make_topup,
    random_khmer_name,
    random_national_id,
)
from krousar_common import topics
from krousar_common.testing import ROOT, ServiceProcess, TestStack, bearer, free_port, wait_for
from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner

STAFF = bearer("staff-1", "commune_staff", communes=["120101", "010201", "170101", "170203"])
MANAGER = bearer("manager-1", "programme_manager")
OPERATOR = bearer("operator-1", "payment_operator")
APPROVER = bearer("approver-1", "payment_approver")
VIEWER = bearer("viewer-1", "viewer")
RULES = ROOT / "deploy" / "prometheus" / "rules"
DASHBOARDS = ROOT / "deploy" / "grafana" / "dashboards"


@dataclass(frozen=True)
class Village:
    code: str
    answers: dict[str, Any]

    @property
    def province(self) -> str:
        return self.code[:2]


PHNOM_PENH = Village("12010101", {})  # a sangkat: the factories' urban answers
BANTEAY_MEANCHEY = Village("01020101", RURAL_POOR_ANSWERS)
SIEM_REAP = Village("17010101", RURAL_POOR_ANSWERS)
SIEM_REAP_2 = Village("17020304", RURAL_POOR_ANSWERS)
# (village, sex of the head, enrolled): 13 poor households, 8 of them enrolled; 2 not poor.
POOR = [
    *[(PHNOM_PENH, sex, enrolled) for sex in "FM" for enrolled in (True, True, False)],
    *[(BANTEAY_MEANCHEY, sex, enrolled) for sex in "FM" for enrolled in (sex == "F", False)],
    (SIEM_REAP, "F", True),
    (SIEM_REAP, "M", True),
    (SIEM_REAP_2, "F", True),
]
EXPECTED_ENROLLED_RATIO = {"12": 4 / 6, "01": 1 / 4, "17": 3 / 3}


# --- the slice: services and Prometheus ----------------------------------------------------------------


@pytest.fixture(scope="module")
async def own_stack() -> AsyncIterator[TestStack]:
    stack = TestStack()
    await stack.check_reachable()
    await stack.create_topics()
    yield stack
    await stack.drop()


@pytest.fixture(scope="module")
async def services(own_stack: TestStack) -> AsyncIterator[dict[str, ServiceProcess]]:
    processes = {
        "registration": ServiceProcess("registration", own_stack, REGISTRATION_COVERAGE_REFRESH_SECONDS="1"),
        "topups": ServiceProcess("topups", own_stack),
        "eligibility": ServiceProcess("eligibility", own_stack, ELIGIBILITY_COVERAGE_REFRESH_SECONDS="1"),
        "payments": ServiceProcess(
            "payments",
            own_stack,
            PAYMENTS_RESUME_INTERVAL_SECONDS="1",
            PAYMENTS_RECONCILE_INTERVAL_SECONDS="0.5",
            PAYMENTS_PERIOD_METRICS_REFRESH_SECONDS="1",
        ),
        "psp_simulator": ServiceProcess(
            "psp_simulator",
            own_stack,
            PSP_DATABASE=own_stack.database("psp_simulator"),
            PSP_PAID_SHARE="0.6",
            PSP_FAILED_SHARE="0.2",
            PSP_SETTLE_DELAY_SECONDS="0.2",
            PSP_UNCLAIMED_DELAY_SECONDS="1",
            PSP_REPORT_INTERVAL_SECONDS="0.2",
            PSP_SEED=f"monitoring-{own_stack.run_id}",
        ),
    }
    try:
        await asyncio.gather(*(process.start() for process in processes.values()))
        yield processes
    finally:
        for process in processes.values():
            process.stop()


class Prometheus:
    """/usr/bin/prometheus on a free port, scraping ``targets`` every second with the repo's rules."""

    def __init__(self, workdir: Path, targets: dict[str, int]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.workdir = workdir
        self.config = workdir / "prometheus.yml"
        self.config.write_text(
            yaml.safe_dump(
                {
                    "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
                    "rule_files": [str(RULES / "*.yml")],
                    "scrape_configs": [
                        {"job_name": job, "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]}
                        for job, port in targets.items()
                    ],
                }
            )
        )
        self.targets = len(targets)
        self.process: subprocess.Popen[bytes] | None = None
        self.started = time.time()

    async def start(self) -> "Prometheus":
        log = (self.workdir / "prometheus.log").open("ab")
        self.process = subprocess.Popen(  # noqa: ASYNC220 - Popen returns at once
            [
                "/usr/bin/prometheus",
                f"--config.file={self.config}",
                f"--storage.tsdb.path={self.workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--log.level=warn",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        await wait_for(self._ready, timeout=30, what=f"Prometheus ready (log: {self.workdir}/prometheus.log)")
        self.started = time.time()
        # Targets are scraped from the first discovery reload on (up to 5 s): counters must have a
        # sample from before the population arrives, or rate() sees no change.
        await wait_for(self._scraping, timeout=30, what="Prometheus scraping every service")
        return self

    async def _scraping(self) -> bool:
        up = await self.query("up == 1")
        return len(up) == self.targets

    async def _ready(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise AssertionError(f"Prometheus exited with {self.process.returncode}: see {self.workdir}")
        with contextlib.suppress(httpx.HTTPError):
            async with httpx.AsyncClient(timeout=2) as client:
                return (await client.get(f"{self.url}/-/ready")).status_code == 200
        return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()

    async def query(self, expr: str) -> dict[tuple[tuple[str, str], ...], float]:
        """Instant vector: the labels (sorted pairs, metric name left out) → value."""
        async with httpx.AsyncClient(timeout=10) as client:
            body = (await client.get(f"{self.url}/api/v1/query", params={"query": expr})).json()
        assert body["status"] == "success", body
        return {
            tuple(sorted((k, v) for k, v in r["metric"].items() if k != "__name__")): float(r["value"][1])
            for r in body["data"]["result"]
        }

    async def by(self, expr: str, *labels: str) -> dict[Any, float]:
        """Instant vector keyed by the values of ``labels`` (one label: the value itself)."""
        found = {}
        for key, value in (await self.query(expr)).items():
            names = dict(key)
            values = tuple(names.get(label, "") for label in labels)
            found[values[0] if len(values) == 1 else values] = value
        return found


@pytest.fixture(scope="module")
async def prometheus(
    services: dict[str, ServiceProcess], tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Prometheus]:
    server = Prometheus(tmp_path_factory.mktemp("prometheus"), {name: s.port for name, s in services.items()})
    try:
        yield await server.start()
    finally:
        server.stop()


# --- the population ------------------------------------------------------------------------------------


@dataclass
class Population:
    topup: str
    payment_date: str
    households: dict[str, tuple[Village, str, bool]]  # household id → (village, head's sex, enrolled)
    run_id: str


async def register(registration: ServiceProcess, village: Village, head_sex: str, **over: Any) -> str:
    head = make_member(sex=head_sex, name_km=random_khmer_name(), national_id=random_national_id())
    child = make_member(
        name_km="សុខ ដារ៉ា", sex="M", date_of_birth="2024-06-01", relationship="CHILD", lives_with_hiv=True
    )
    answers = over.pop("answers", None) or village.answers or make_household()["answers"]
    body = make_household(village_code=village.code, answers=answers, members=[head, child], **over)
    async with registration.client() as client:
        response = await client.post("/v1/households", json=body, headers=STAFF)
    assert response.status_code == 201, response.text
    return response.json()["household_id"]


async def count(stack: TestStack, service: str, sql: str, *args: Any) -> int:
    conn = await stack.connect(service)
    try:
        return await conn.fetchval(sql, *args)
    finally:
        await conn.close()


async def until_count(stack: TestStack, service: str, sql: str, *args: Any, expected: int) -> None:
    async def reached() -> bool:
        return await count(stack, service, sql, *args) == expected

    await wait_for(reached, timeout=45, interval=0.2, what=f"{service}: {sql} = {expected}")


async def activate_topup(topups: ServiceProcess, code: str, payment_date: str) -> None:
    async with topups.client() as client:
        body = make_topup(code, payment_dates=[payment_date])
        created = await client.post("/v1/topups", json=body, headers=MANAGER)
        assert created.status_code == 201, created.text
        activated = await client.post(f"/v1/topups/{code}/activate", headers=MANAGER)
        assert activated.status_code == 200, activated.text


async def calculated_run(stack: TestStack, payments: ServiceProcess, code: str, payment_date: str) -> str:
    """A CALCULATED run of the top-up, once payments has every enrolled household's decision."""
    eligible = "SELECT count(*) FROM decisions WHERE programme_code = $1 AND eligible"
    enrolled = sum(1 for _, _, e in POOR if e)
    await until_count(stack, "eligibility", eligible, code, expected=enrolled)
    await until_count(stack, "payments", eligible, code, expected=enrolled)
    async with payments.client() as client:
        body = {"programme_code": code, "payment_date": payment_date}
        run = await client.post("/v1/runs", json=body, params={"wait": True}, headers=OPERATOR)
    assert run.status_code == 202 and run.json()["households"] == enrolled, run.text
    return run.json()["run_id"]


@pytest.fixture(scope="module")
async def population(
    own_stack: TestStack, services: dict[str, ServiceProcess], prometheus: Prometheus
) -> Population:
    """Registered, enrolled, and paid by one approved top-up run that the PSP has settled."""
    code = f"MON_{uuid.uuid4().hex[:6].upper()}"
    payment_date = (date.today() + timedelta(days=20)).isoformat()
    await activate_topup(services["topups"], code, payment_date)

    households = {}
    for village, sex, enrolled in POOR:
        households[await register(services["registration"], village, sex)] = (village, sex, enrolled)
    for _ in range(2):
        await register(services["registration"], PHNOM_PENH, "M", answers=dict(URBAN_NOT_POOR_ANSWERS))
    await until_count(own_stack, "eligibility", "SELECT count(*) FROM households", expected=len(POOR) + 2)

    enrolled = [h for h, (_, _, e) in households.items() if e]
    async with services["eligibility"].client() as client:
        for household_id in enrolled:
            body = {"household_id": household_id, "identity_document": "NATIONAL_ID", "account": "012345678"}
            response = await client.post("/v1/enrolments", json=body, headers=STAFF)
            assert response.status_code == 201, response.text

    run_id = await calculated_run(own_stack, services["payments"], code, payment_date)
    async with services["payments"].client() as client:
        approved = await client.post(f"/v1/runs/{run_id}/approval", headers=APPROVER)
        assert approved.status_code == 200, approved.text

        async def reconciled() -> bool:
            response = await client.get(f"/v1/runs/{run_id}", headers=OPERATOR)
            return response.json()["state"] == "RECONCILED"

        await wait_for(reconciled, timeout=45, interval=0.2, what=f"run {run_id} reconciled")
    # Eligibility has heard every status (its own projection of payments.status.v1).
    await until_count(
        own_stack, "eligibility", "SELECT count(*) FROM payment_statuses", expected=len(enrolled)
    )
    return Population(code, payment_date, households, run_id)


# --- numbers from the databases ------------------------------------------------------------------------


async def eligibility_funnel(stack: TestStack) -> dict[tuple[str, str], dict[str, int]]:
    """(programme, province) → eligible and enrolled households, from eligibility's decisions."""
    conn = await stack.connect("eligibility")
    try:
        rows = await conn.fetch(
            "SELECT d.programme_code, h.province_code,"
            " count(*) FILTER (WHERE d.eligible OR d.reasons = '{NOT_ENROLLED}') AS eligible,"
            " count(*) FILTER (WHERE d.eligible) AS enrolled,"
            " count(*) FILTER (WHERE d.eligible AND h.female_headed) AS enrolled_female"
            " FROM decisions d JOIN households h USING (household_id) WHERE h.status = 'ACTIVE'"
            " GROUP BY 1, 2"
        )
    finally:
        await conn.close()
    return {(r["programme_code"], r["province_code"]): dict(r) for r in rows}


async def paid_households(stack: TestStack, code: str, key: str) -> dict[str, int]:
    """Province → households with a line the PSP reported PAID, from the payments database."""
    conn = await stack.connect("payments")
    try:
        rows = await conn.fetch(
            "SELECT province_code, count(DISTINCT household_id) FROM line_states"
            " WHERE programme_code = $1 AND period = $2 AND state = 'PAID' GROUP BY 1",
            code,
            key,
        )
    finally:
        await conn.close()
    return {r[0]: r[1] for r in rows}


async def settled(
    what: str,
    database: Callable[[], Awaitable[Any]],
    recorded: Callable[[], Awaitable[Any]],
    timeout: float = 20,
) -> Any:
    """Wait until what Prometheus records equals what the databases say; both, once equal."""
    last: list[Any] = []

    async def equal() -> bool:
        last[:] = [await database(), await recorded()]
        return last[0] == last[1]

    try:
        await wait_for(equal, timeout=timeout, interval=0.5, what=what)
    except AssertionError as exc:
        raise AssertionError(f"{what}: databases say {last[0]!r}, Prometheus {last[1]!r}") from exc
    return last[0]


def ratios(numerators: dict[Any, int], denominators: dict[Any, int]) -> dict[Any, float]:
    return {key: round(numerators.get(key, 0) / d, 9) for key, d in denominators.items() if d > 0}


def rounded(values: dict[Any, float]) -> dict[Any, float]:
    return {key: round(value, 9) for key, value in values.items()}


# --- tests ---------------------------------------------------------------------------------------------


async def test_enrolled_over_eligible_equals_the_decisions(own_stack, prometheus, population) -> None:
    async def database() -> dict[tuple[str, str], float]:
        funnel = await eligibility_funnel(own_stack)
        return ratios(
            {k: v["enrolled"] for k, v in funnel.items()}, {k: v["eligible"] for k, v in funnel.items()}
        )

    async def recorded() -> dict[tuple[str, str], float]:
        return rounded(
            await prometheus.by("krousar:coverage_enrolled_ratio:province", "programme", "province")
        )

    by_province = await settled("enrolled / eligible by programme and province", database, recorded)
    assert {p: r for (code, p), r in by_province.items() if code == population.topup} == pytest.approx(
        EXPECTED_ENROLLED_RATIO
    )

    async def national() -> dict[str, float]:
        funnel = await eligibility_funnel(own_stack)
        totals: dict[str, dict[str, int]] = {}
        for (code, _), v in funnel.items():
            total = totals.setdefault(code, {"enrolled": 0, "eligible": 0})
            total["enrolled"] += v["enrolled"]
            total["eligible"] += v["eligible"]
        return ratios(
            {c: t["enrolled"] for c, t in totals.items()}, {c: t["eligible"] for c, t in totals.items()}
        )

    async def national_recorded() -> dict[str, float]:
        return rounded(await prometheus.by("krousar:coverage_enrolled_ratio:national", "programme"))

    nationally = await settled("enrolled / eligible by programme", national, national_recorded)
    assert nationally[population.topup] == pytest.approx(8 / 13)


async def test_paid_over_eligible_equals_what_the_psp_reported_to_payments(
    own_stack, prometheus, population
) -> None:
    code = population.topup

    async def database() -> dict[str, float]:
        funnel = await eligibility_funnel(own_stack)
        eligible = {p: v["eligible"] for (c, p), v in funnel.items() if c == code}
        return ratios(await paid_households(own_stack, code, population.payment_date), eligible)

    async def recorded() -> dict[str, float]:
        query = f'krousar:coverage_paid_ratio:province{{programme="{code}"}}'
        return rounded(await prometheus.by(query, "province"))

    by_province = await settled("paid / eligible by province", database, recorded)
    paid = await paid_households(own_stack, code, population.payment_date)
    assert 0 < sum(paid.values()) <= 8, "the PSP simulator pays about 60% of the lines"
    assert set(by_province) == {"12", "01", "17"}

    async def funnel_database() -> dict[str, int]:
        statuses = await count(
            own_stack,
            "payments",
            "SELECT count(DISTINCT household_id) FROM payment_lines WHERE programme_code = $1",
            code,
        )
        return {"instructed": statuses, "paid": sum(paid.values()), "enrolled": 8, "eligible": 13}

    async def funnel_recorded() -> dict[str, int]:
        stages = "instructed|paid|enrolled|eligible"
        query = f'krousar:coverage_households:national{{programme="{code}", stage=~"{stages}"}}'
        return {stage: int(v) for stage, v in (await prometheus.by(query, "stage")).items()}

    await settled("the funnel's instructed and paid stages", funnel_database, funnel_recorded)


async def test_gender_and_registry_gauges_equal_the_registry(own_stack, prometheus, population) -> None:
    code = population.topup

    async def database() -> dict[str, float]:
        funnel = await eligibility_funnel(own_stack)
        enrolled = sum(v["enrolled"] for (c, _), v in funnel.items() if c == code)
        female = sum(v["enrolled_female"] for (c, _), v in funnel.items() if c == code)
        return {"enrolled": round(female / enrolled, 9)}

    async def recorded() -> dict[str, float]:
        query = f'krousar:coverage_female_headed_share:national{{programme="{code}", stage="enrolled"}}'
        return rounded(await prometheus.by(query, "stage"))

    share = await settled("share of enrolled households headed by a woman", database, recorded)
    assert share == {"enrolled": pytest.approx(5 / 8)}

    async def registry() -> dict[str, int]:
        heads = await stack_rows(
            own_stack,
            "registration",
            "SELECT m.sex, count(*) FROM households h JOIN members m ON m.member_id = h.head_member_id"
            " WHERE h.status = 'ACTIVE' GROUP BY 1",
        )
        members = await stack_rows(
            own_stack,
            "registration",
            "SELECT m.sex, count(*) FROM members m JOIN households h USING (household_id)"
            " WHERE m.active AND h.status = 'ACTIVE' GROUP BY 1",
        )
        return {**{f"head {s}": n for s, n in heads}, **{f"member {s}": n for s, n in members}}

    async def registry_recorded() -> dict[str, int]:
        heads = await prometheus.by(
            "sum by (head_sex) (max by (province, poverty_level, card_status, head_sex)"
            " (krousar_registry_households))",
            "head_sex",
        )
        members = await prometheus.by(
            "sum by (sex) (max by (province, sex) (krousar_registry_members))", "sex"
        )
        return {
            **{f"head {s}": int(n) for s, n in heads.items()},
            **{f"member {s}": int(n) for s, n in members.items()},
        }

    counts = await settled("households by sex of the head and members by sex", registry, registry_recorded)
    assert counts == {"head F": 7, "head M": 8, "member F": 7, "member M": 23}

    # HIV only by province, never by sex; the other categories by both.
    vulnerable = await prometheus.query("krousar_registry_vulnerable_members")
    assert all(("sex" in dict(k)) == (dict(k)["category"] != "hiv") for k in vulnerable)
    children = await prometheus.by('sum(krousar_registry_vulnerable_members{category="child_under_5"})')
    assert children == {(): 15.0}


async def test_hiv_status_never_reaches_metrics_below_province(services, population) -> None:
    """DOMAIN.md §2: a count of members living with HIV (every child of the population) is never by
    district, commune or village, in the metrics of any service."""
    hiv_series = []
    for name, service in services.items():
        async with service.client() as client:
            exposition = (await client.get("/metrics")).text
        hiv_series += [
            (name, sample)
            for family in text_string_to_metric_families(exposition)
            for sample in family.samples
            if "hiv" in f"{sample.name} {sample.labels}".lower()
        ]
    below_province = [
        (name, sample)
        for name, sample in hiv_series
        if any(
            label.split("_")[0] in {"district", "commune", "village"}
            or re.fullmatch(r"\d{4}|\d{6}|\d{8}", value)
            for label, value in sample.labels.items()
        )
    ]

    assert below_province == []
    registry = [
        s for name, s in hiv_series if name == "registration" and s.name.endswith("vulnerable_members")
    ]
    assert {s.labels["province"]: s.value for s in registry} == {"12": 8, "01": 4, "17": 3}


async def test_registry_change_to_decision_latency_is_observed(prometheus, population) -> None:
    async def observed() -> dict[Any, float]:
        found = await prometheus.by("sum(krousar_eligibility_decision_latency_seconds_count)")
        return found if found and found[()] >= len(POOR) + 2 else {}

    await wait_for(observed, timeout=20, what="a latency observation per registration")
    p95 = await wait_for(
        lambda: prometheus.by("krousar:eligibility_decision_latency_seconds:p95_5m"), what="recorded p95"
    )
    assert 0 < p95[()] < 60


async def test_payment_run_gauges_show_the_reconciled_run(own_stack, prometheus, population) -> None:
    code = population.topup

    async def database() -> dict[str, int]:
        rows = await stack_rows(
            own_stack,
            "payments",
            "SELECT state, count(*) FROM runs WHERE programme_code = $1 GROUP BY 1",
            code,
        )
        return dict(rows)

    async def recorded() -> dict[str, int]:
        found = await prometheus.by(f'max by (state) (krousar_payments_runs{{programme="{code}"}})', "state")
        return {state: int(n) for state, n in found.items()}

    # The payments service reads its gauges every 15 s.
    assert await settled("runs by state", database, recorded, timeout=40) == {"RECONCILED": 1}
    assert await prometheus.query('ALERTS{alertname="PaymentRunStuck"}') == {}
    # Reconciled: nothing waits past its claim window, no run is waiting in any state.
    past = await prometheus.by(f'max(krousar_payments_runs_past_claim_window{{programme="{code}"}})')
    assert past == {(): 0.0}
    assert await prometheus.query(f'krousar_payments_oldest_run_age_seconds{{programme="{code}"}}') == {}
    assert await prometheus.query('ALERTS{alertname="PaymentReconciliationOverdue"}') == {}


async def test_riel_paid_by_province_stays_after_reconciliation(own_stack, prometheus, population) -> None:
    code, period = population.topup, population.payment_date

    async def database() -> dict[str, int]:
        rows = await stack_rows(
            own_stack,
            "payments",
            "SELECT province_code, sum(amount_riel) FROM line_states"
            " WHERE programme_code = $1 AND period = $2 AND state = 'PAID' GROUP BY 1",
            code,
            period,
        )
        return dict(rows)

    async def recorded() -> dict[str, int]:
        query = f'krousar:payments_paid_amount_riel:province{{programme="{code}", period="{period}"}}'
        return {province: int(riel) for province, riel in (await prometheus.by(query, "province")).items()}

    paid = await settled("riel paid by province of the reconciled run", database, recorded)
    assert sum(paid.values()) > 0, "the PSP simulator pays about 60% of the lines"
    query = f'krousar:payments_paid_amount_riel:national{{programme="{code}"}}'
    national = await prometheus.by(query, "period")
    assert national == {period: sum(paid.values())}

    async def lines_database() -> dict[str, int]:
        rows = await stack_rows(
            own_stack,
            "payments",
            "SELECT state, count(*) FROM line_states WHERE programme_code = $1 GROUP BY 1",
            code,
        )
        return dict(rows)

    async def lines_recorded() -> dict[str, int]:
        series = f'krousar_payments_period_lines{{programme="{code}"}}'
        query = f"sum by (status) (max by (province, status) ({series}))"
        return {status: int(n) for status, n in (await prometheus.by(query, "status")).items()}

    lines = await settled("the reconciled run's lines by status", lines_database, lines_recorded)
    assert sum(lines.values()) == 8 and set(lines) <= {"PAID", "FAILED", "UNCLAIMED"}


async def test_funnel_by_poverty_level_equals_the_decisions(own_stack, prometheus, population) -> None:
    code = population.topup

    async def database() -> dict[tuple[str, str], int]:
        rows = await stack_rows(
            own_stack,
            "eligibility",
            "SELECT coalesce(h.poverty_level, 'NONE'), count(*),"
            " count(*) FILTER (WHERE d.eligible OR d.reasons = '{NOT_ENROLLED}'),"
            " count(*) FILTER (WHERE d.eligible)"
            " FROM households h LEFT JOIN decisions d"
            " ON d.household_id = h.household_id AND d.programme_code = $1"
            " WHERE h.status = 'ACTIVE' GROUP BY 1",
            code,
        )
        return {
            (level, stage): n
            for level, *counts in rows
            for stage, n in zip(("registered", "eligible", "enrolled"), counts, strict=True)
        }

    async def recorded() -> dict[tuple[str, str], int]:
        query = (
            "sum by (poverty_level, stage) (max by (province, poverty_level, stage)"
            f' (krousar_eligibility_households_by_poverty_level{{programme="{code}",'
            ' stage=~"registered|eligible|enrolled"}))'
        )
        return {key: int(n) for key, n in (await prometheus.by(query, "poverty_level", "stage")).items()}

    funnel = await settled("the funnel by poverty level", database, recorded)
    assert sum(n for (_, stage), n in funnel.items() if stage == "registered") == len(POOR) + 2
    assert sum(n for (_, stage), n in funnel.items() if stage == "enrolled") == 8
    assert funnel[("NOT_POOR", "registered")] == 2 and funnel[("NOT_POOR", "eligible")] == 0


async def test_events_consumed_by_type_equal_the_events_published(own_stack, prometheus, population) -> None:
    households = own_stack.topic(topics.HOUSEHOLDS.name)

    async def published() -> dict[str, int]:
        query = f'sum by (type) (krousar_events_published_total{{job="registration", topic="{households}"}})'
        return {event_type: int(n) for event_type, n in (await prometheus.by(query, "type")).items()}

    async def consumed() -> dict[str, int]:
        query = (
            "sum by (type) (krousar_events_consumed_total"
            f'{{job="eligibility", topic="{households}", outcome="applied"}})'
        )
        return {event_type: int(n) for event_type, n in (await prometheus.by(query, "type")).items()}

    by_type = await settled("household events eligibility applied, by type", published, consumed)
    assert by_type["krousar.HouseholdRegistered"] == len(POOR) + 2

    async def caught_up() -> dict[Any, float]:
        query = f'krousar_consumer_lag_messages{{job="eligibility", topic="{households}"}} == 0'
        return await prometheus.query(query)

    await wait_for(caught_up, timeout=20, what="eligibility's lag on the households topic reported as 0")


async def test_coverage_report_as_csv_from_the_api_and_the_cli(own_stack, services, population) -> None:
    code = population.topup
    async with services["eligibility"].client() as client:
        response = await client.get(
            "/v1/coverage", params={"programme": code, "format": "csv"}, headers=VIEWER
        )
        report = (await client.get("/v1/coverage", params={"programme": code}, headers=VIEWER)).json()
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert f"coverage-{code}-{population.payment_date}.csv" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    national = next(r for r in rows if r["level"] == "national")
    assert (national["eligible"], national["enrolled"]) == ("13", "8")
    assert national["paid"] == str(report["totals"]["paid"])
    assert int(national["instructed"]) == 8
    communes = {r["commune_code"]: r for r in rows if r["level"] == "commune"}
    assert set(communes) == {"120101", "010201", "170101", "170203"}
    assert (communes["170203"]["province_code"], communes["170203"]["enrolled"]) == ("17", "1")
    provinces = {r["province_code"]: int(r["enrolled"]) for r in rows if r["level"] == "province"}
    assert provinces == {"01": 1, "12": 4, "17": 3}

    # The operator's CLI prints the same report from the database (in a thread: it runs its own loop).
    env = own_stack.env("eligibility")
    month = population.payment_date[:7]
    args = ["coverage", "--programme", code, "--period", month, "--format", "csv"]
    printed = await asyncio.to_thread(CliRunner().invoke, cli.app, args, env=env)
    assert printed.exit_code == 0, printed.output
    assert printed.stdout == response.text
    args = ["coverage", "--programme", code, "--period", "1999-01"]
    refused = await asyncio.to_thread(CliRunner().invoke, cli.app, args, env=env)
    assert refused.exit_code == 1 and "current payment" in refused.stderr


async def test_render_dashboards_when_asked(own_stack, services, prometheus, population) -> None:
    """KROUSAR_RENDER_DASHBOARDS=<folder>: a PNG per dashboard from this Prometheus' data, with a
    second top-up's run left waiting for approval so that the open-run panels have something."""
    folder = os.environ.get("KROUSAR_RENDER_DASHBOARDS")
    if not folder:
        return
    from deploy.grafana import render

    code, payment_date = (
        f"MON2_{uuid.uuid4().hex[:6].upper()}",
        (date.today() + timedelta(days=30)).isoformat(),
    )
    await activate_topup(services["topups"], code, payment_date)
    await calculated_run(own_stack, services["payments"], code, payment_date)
    open_lines = f'krousar_payments_open_run_lines{{programme="{code}"}}'
    await wait_for(lambda: prometheus.query(open_lines), timeout=40, what="the open run's gauges")
    await asyncio.sleep(10)  # a few more scrapes and rule evaluations to draw

    window = render.Window(time.time(), time.time() - prometheus.started, rate_interval="5s")
    source = render.Prometheus(prometheus.url)
    for path in sorted(DASHBOARDS.glob("*.json")):
        chosen = {"programme": population.topup} if path.stem == "coverage-funnel" else {}
        out = ROOT / folder / f"{path.stem}.png"
        await asyncio.to_thread(render.render, json.loads(path.read_text()), source, out, window, chosen)


async def stack_rows(stack: TestStack, service: str, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    conn = await stack.connect(service)
    try:
        return [tuple(r) for r in await conn.fetch(sql, *args)]
    finally:
        await conn.close()
