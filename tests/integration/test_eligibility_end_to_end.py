"""Eligibility end to end on a stack of its own (registration, topups, eligibility, payments): its
clock is held at past days, which the session's services must never see.

The daily job re-decides what time alone changes (a child turning 5, a card running out), a proxy
payee goes from the enrolment to the payment line, and the beneficiary list filters by province,
commune and period.
"""

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import date, datetime
from typing import Any

import pytest
from factories import RURAL_POOR_ANSWERS, make_member
from krousar_common.testing import ServiceProcess, TestStack, bearer, wait_for
from test_eligibility import (
    ELDERLY,
    MANAGER,
    STAFF,
    VIEWER,
    Decisions,
    decision_in,
    enrol,
    projected,
    register,
)

OPERATOR = bearer("operator-1", "payment_operator")
PROXY_NAME = "ចាន់ ធីតា"  # a neighbour who collects for the household: not one of its members


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
        name: ServiceProcess(name, own_stack)
        for name in ("registration", "topups", "eligibility", "payments")
    }
    try:
        await asyncio.gather(*(p.start() for p in processes.values()))
        yield processes
    finally:
        for process in processes.values():
            process.stop()


@pytest.fixture(scope="module")
async def decisions(own_stack: TestStack) -> AsyncIterator[Decisions]:
    collector = Decisions(own_stack)
    await collector._consumer.start()
    task = asyncio.create_task(collector.collect())
    yield collector
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await collector._consumer.stop()


async def registered_and_projected(services: dict[str, ServiceProcess], **over: Any) -> str:
    household_id = await register(services["registration"], **over)
    eligibility = services["eligibility"]
    await wait_for(lambda: projected(eligibility, household_id), what="household projected")
    return household_id


async def evaluate(eligibility: ServiceProcess, on: str | None, **headers: str) -> dict[str, Any]:
    """Hold the clock at ``on`` (None: follow the calendar again); the finished evaluation run."""
    async with eligibility.client() as client:
        requested = await client.post("/v1/evaluations", json={"on": on}, headers={**MANAGER, **headers})
        assert requested.status_code == 202, requested.text
        run_id = requested.json()["run_id"]

        async def finished() -> dict[str, Any] | None:
            run = (await client.get(f"/v1/evaluations/{run_id}", headers=VIEWER)).json()
            return run if run["status"] in ("DONE", "FAILED") else None

        run = await wait_for(finished, timeout=60, what=f"evaluation run {run_id} for {on}")
    assert run["status"] == "DONE", run
    return run


# --- the daily job: what time alone changes ----------------------------------------------------------


async def test_the_daily_job_re_decides_as_a_child_turns_5_and_the_card_runs_out(services, decisions) -> None:
    eligibility = services["eligibility"]
    members = [
        make_member(),
        make_member(**ELDERLY),
        make_member(name_km="សុខ កុមារ", sex="M", date_of_birth="2018-07-01", relationship="CHILD"),
    ]
    # Card issued 2021-06-01, valid until 2024-05-31; the child is 5 on 2023-07-01.
    household_id = await registered_and_projected(services, members=members, interviewed_on="2021-06-01")
    assert (await enrol(eligibility, household_id)).status_code == 201
    try:
        await evaluate(eligibility, "2023-06-10")
        june = await decisions.wait(household_id, "COVID19_CT", eligible=True, effective_on="2023-06-10")
        in_june = await decision_in(eligibility, household_id, "COVID19_CT", payment_key="2023-06")
        # Phnom Penh, POOR_1: base + 3 members + 2 vulnerable (the grandmother, the child under 5).
        assert in_june["amount_riel"] == 120_000 + 3 * 52_000 + 2 * 40_000

        await evaluate(eligibility, "2023-07-10")
        in_july = await decision_in(eligibility, household_id, "COVID19_CT", payment_key="2023-07")
        assert (in_july["eligible"], in_july["amount_riel"]) == (True, 120_000 + 3 * 52_000 + 1 * 40_000)

        await evaluate(eligibility, "2024-05-10")
        ended = await decisions.wait(household_id, "COVID19_CT", effective_on="2024-05-10")
        assert ended["reasons"] == ["PROGRAMME_NOT_RUNNING"]
        # June's decision, then this one: July's was the same decision for another amount (payments
        # computes amounts itself), so nothing was published for it.
        assert june["effective_on"] == "2023-06-10"
        assert decisions.count[household_id, "COVID19_CT"] == 2
        await decision_in(eligibility, household_id, "FAMILY_PACKAGE", eligible=True, payment_key="2024-05")
        assert decisions.latest[household_id, "FAMILY_PACKAGE"]["eligible"] is True
        await evaluate(eligibility, "2024-06-10")
        expired = await decisions.wait(household_id, "FAMILY_PACKAGE", effective_on="2024-06-10")
        assert (expired["eligible"], expired["reasons"]) == (False, ["CARD_EXPIRED"])
        assert expired["household"]["card"]["status"] == "ACTIVE"  # no registry event: time alone
    finally:
        await evaluate(eligibility, None)


async def test_a_retried_evaluation_request_is_one_run(services, own_stack) -> None:
    key = {"Idempotency-Key": str(uuid.uuid4())}

    first = await evaluate(services["eligibility"], None, **key)
    retry = await evaluate(services["eligibility"], None, **key)

    assert retry["run_id"] == first["run_id"]
    conn = await own_stack.connect("eligibility")
    try:
        runs = await conn.fetchval(
            "SELECT count(*) FROM evaluation_runs WHERE requested_at >= $1",
            datetime.fromisoformat(first["requested_at"]),
        )
    finally:
        await conn.close()
    assert runs == 1


# --- a proxy payee, from the commune hall to the payment line -----------------------------------


async def payments_know(own_stack: TestStack, household_id: str, code: str) -> bool:
    conn = await own_stack.connect("payments")
    try:
        return bool(
            await conn.fetchval(
                "SELECT count(*) FROM decisions WHERE household_id = $1 AND programme_code = $2",
                uuid.UUID(household_id),
                code,
            )
        )
    finally:
        await conn.close()


async def test_a_named_proxy_is_paid_for_the_household(services, decisions, own_stack) -> None:
    eligibility, payments = services["eligibility"], services["payments"]
    household_id = await registered_and_projected(
        services, members=[make_member(), make_member(**ELDERLY)], interviewed_on="2025-03-01"
    )
    body = {
        "household_id": household_id,
        "identity_document": "FAMILY_BOOK",
        "payee_type": "PROXY",
        "payee_name": PROXY_NAME,
        "account": "098765432",
    }
    async with eligibility.client() as client:
        enrolled = await client.post("/v1/enrolments", json=body, headers=STAFF)
        unnamed = await client.post(
            "/v1/enrolments", json={**body, "payee_name": None}, headers=STAFF
        )  # a proxy must be named

    assert enrolled.status_code == 201, enrolled.text
    assert (enrolled.json()["payee_type"], enrolled.json()["payee_name"]) == ("PROXY", PROXY_NAME)
    assert unnamed.status_code == 422
    decided = await decisions.wait(household_id, "FAMILY_PACKAGE", eligible=True)
    assert decided["enrolment"]["payee_type"] == "PROXY"
    assert (decided["enrolment"]["payee_name"], decided["enrolment"]["account"]) == (PROXY_NAME, "098765432")

    await wait_for(lambda: payments_know(own_stack, household_id, "FAMILY_PACKAGE"), what="payments knows")
    period = decided["effective_on"][:7]
    async with payments.client() as client:
        run = await client.post(
            "/v1/runs",
            json={"programme_code": "FAMILY_PACKAGE", "period": period},
            params={"wait": True},
            headers=OPERATOR,
        )
        assert run.status_code == 202, run.text
        assert run.json()["state"] == "CALCULATED", run.json()
        lines = await client.get(
            f"/v1/runs/{run.json()['run_id']}/lines", params={"limit": 1000}, headers=OPERATOR
        )

    ours = [line for line in lines.json()["items"] if line["household_id"] == household_id]
    assert ours, lines.json()
    assert {(line["payee_name"], line["channel"], line["account"]) for line in ours} == {
        (PROXY_NAME, "WING", "098765432")
    }


# --- the beneficiary list ------------------------------------------------------------------------------


async def test_beneficiaries_filter_by_province_commune_and_period(services) -> None:
    eligibility = services["eligibility"]
    villages = {"A": "12010101", "B": "12110101", "C": "01020101"}
    households = {}
    for name, village in villages.items():
        answers = dict(RURAL_POOR_ANSWERS) if village.startswith("01") else None
        over = {"answers": answers} if answers else {}
        households[name] = await registered_and_projected(
            services, village_code=village, members=[make_member(), make_member(**ELDERLY)], **over
        )
    # Carded from 2021-06-01 to 2024-05-31: a beneficiary in May 2024, not today.
    households["OLD"] = await registered_and_projected(
        services, members=[make_member(), make_member(**ELDERLY)], interviewed_on="2021-06-01"
    )
    for household_id in households.values():
        assert (await enrol(eligibility, household_id)).status_code == 201
    today = date.today().strftime("%Y-%m")
    for name in ("A", "B", "C"):
        await decision_in(eligibility, households[name], "FAMILY_PACKAGE", eligible=True, payment_key=today)

    async def listed(**params: str) -> set[str]:
        async with eligibility.client() as client:
            response = await client.get(
                "/v1/programmes/FAMILY_PACKAGE/beneficiaries",
                params={"limit": 1000, **params},
                headers=VIEWER,
            )
        assert response.status_code == 200, response.text
        found = {item["household_id"] for item in response.json()["items"]}
        return {name for name, household_id in households.items() if household_id in found}

    assert await listed() == {"A", "B", "C"}
    assert await listed(period=today) == {"A", "B", "C"}
    assert await listed(province="12") == {"A", "B"}
    assert await listed(commune="121101") == {"B"}
    assert await listed(province="01") == {"C"}
    assert await listed(period="2024-05") == {"OLD"}
    assert await listed(period="2024-05", commune="120101") == {"OLD"}
    assert await listed(period="2024-05", province="01") == set()
    async with eligibility.client() as client:
        bad = await client.get(
            "/v1/programmes/FAMILY_PACKAGE/beneficiaries", params={"province": "1"}, headers=VIEWER
        )
    assert bad.status_code == 422
    assert [e["field"] for e in bad.json()["errors"]] == ["province"]
