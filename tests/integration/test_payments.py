"""Payment runs against the real stack: decisions and programme versions published on Kafka (as
eligibility and topups would), the payments service and the PSP simulator as real processes."""

import csv
import io
import os
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import xmlschema
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord
from factories import make_check_snapshot, make_decision, make_snapshot, make_snapshot_member
from krousar_common import topics
from krousar_common.benefits import calculate
from krousar_common.events import make_envelope
from krousar_common.events.eligibility import EligibilityDecided
from krousar_common.events.households import HouseholdSnapshot
from krousar_common.events.payments import PaymentStatus, PaymentStatusReported
from krousar_common.events.programmes import ProgrammeVersionPublished
from krousar_common.programmes import ProgrammeVersion, load_programme
from krousar_common.testing import ROOT, ServiceProcess, TestStack, bearer, token, wait_for
from payments import cli
from payments.domain import payment_id
from payments.exports.pain001 import XSD
from psp_simulator.domain import Outcome, Shares, outcome_of
from redis.asyncio import Redis
from typer.testing import CliRunner

SEEDS = ROOT / "services" / "topups" / "topups" / "seed"
OPERATOR = bearer("operator-1", "payment_operator")
APPROVER = bearer("approver-1", "payment_approver")
# The operator who created the run also holds the approver role: maker-checker still says no.
OPERATOR_AS_APPROVER = bearer("operator-1", "payment_operator", "payment_approver")
FINAL = ("PAID", "FAILED", "UNCLAIMED")


def seed(name: str) -> ProgrammeVersion:
    return load_programme(SEEDS / f"{name}.json")


def renamed(programme: ProgrammeVersion, code: str, **update: Any) -> ProgrammeVersion:
    """The same programme under a code of its own, so a test's runs see only its households."""
    return ProgrammeVersion.model_validate({**programme.model_dump(mode="json"), "code": code, **update})


class Bus:
    """Publishes what eligibility and topups would: programme versions and decisions."""

    def __init__(self, stack: TestStack) -> None:
        self.stack = stack
        self.producer = AIOKafkaProducer(bootstrap_servers=stack.kafka_bootstrap, linger_ms=5)

    async def programme(self, programme: ProgrammeVersion) -> None:
        envelope = make_envelope(
            ProgrammeVersionPublished(programme=programme),
            source="test/topups",
            subject=programme.code,
            correlation_id="test",
        )
        topic = self.stack.topic(topics.TOPUPS.name)
        await self.producer.send_and_wait(topic, envelope.to_bytes(), key=programme.code.encode())

    async def decisions(self, decisions: list[dict[str, Any]]) -> None:
        topic = self.stack.topic(topics.DECISIONS.name)
        for body in decisions:
            envelope = make_envelope(
                EligibilityDecided.model_validate(body),
                source="test/eligibility",
                subject=body["household_id"],
                correlation_id="test",
            )
            await self.producer.send(topic, envelope.to_bytes(), key=body["household_id"].encode())
        await self.producer.flush()


@pytest.fixture(scope="module")
async def bus(stack: TestStack) -> Any:
    bus = Bus(stack)
    await bus.producer.start()
    yield bus
    await bus.producer.stop()


async def publish(
    bus: Bus, stack: TestStack, programme: ProgrammeVersion, decisions: list[dict[str, Any]]
) -> None:
    """Publish the programme and its decisions, and wait until payments has projected them all."""
    await bus.programme(programme)
    await bus.decisions(decisions)
    conn = await stack.connect("payments")
    try:

        async def projected() -> bool:
            known = await conn.fetchval(
                "SELECT count(*) FROM programme_versions WHERE code = $1", programme.code
            )
            ids = [uuid.UUID(d["household_id"]) for d in decisions]
            count = await conn.fetchval(
                "SELECT count(*) FROM decisions WHERE programme_code = $1 AND household_id = ANY($2)",
                programme.code,
                ids,
            )
            return known and count == len(decisions)

        await wait_for(projected, timeout=60, what=f"{programme.code} projected by payments")
    finally:
        await conn.close()


def decisions_for(code: str, households: list[dict[str, Any]], **over: Any) -> list[dict[str, Any]]:
    return [make_decision(h, code, **over) for h in households]


# --- the API ---------------------------------------------------------------------------------------


async def create_run(
    payments: ServiceProcess,
    code: str,
    *,
    period: str | None = None,
    payment_date: str | None = None,
    wait: bool = True,
    headers: dict[str, str] = OPERATOR,
) -> httpx.Response:
    body = {"programme_code": code, "period": period, "payment_date": payment_date}
    async with payments.client() as client:
        return await client.post("/v1/runs", json=body, params={"wait": wait}, headers=headers)


async def created(payments: ServiceProcess, code: str, **kwargs: Any) -> dict[str, Any]:
    response = await create_run(payments, code, **kwargs)
    assert response.status_code == 202, response.text
    return response.json()


async def approve(
    payments: ServiceProcess, run_id: str, headers: dict[str, str] = APPROVER
) -> httpx.Response:
    async with payments.client() as client:
        return await client.post(f"/v1/runs/{run_id}/approval", headers=headers)


async def get_run(payments: ServiceProcess, run_id: str) -> dict[str, Any]:
    async with payments.client() as client:
        response = await client.get(f"/v1/runs/{run_id}", headers=OPERATOR)
    assert response.status_code == 200, response.text
    return response.json()


async def wait_state(
    payments: ServiceProcess, run_id: str, state: str, timeout: float = 60
) -> dict[str, Any]:
    async def reached() -> dict[str, Any] | None:
        run = await get_run(payments, run_id)
        return run if run["state"] == state else None

    return await wait_for(reached, timeout=timeout, interval=0.2, what=f"run {run_id} {state}")


async def paid_through(payments: ServiceProcess, code: str, **kwargs: Any) -> dict[str, Any]:
    """Create, approve and reconcile a run; the reconciled run."""
    run = await created(payments, code, **kwargs)
    assert run["state"] == "CALCULATED", run
    assert (await approve(payments, run["run_id"])).status_code == 200
    return await wait_state(payments, run["run_id"], "RECONCILED")


async def all_lines(payments: ServiceProcess, run_id: str) -> list[dict[str, Any]]:
    lines: list[dict[str, Any]] = []
    cursor = None
    async with payments.client() as client:
        while True:
            params = {"limit": 1000, **({"cursor": cursor} if cursor else {})}
            page = (await client.get(f"/v1/runs/{run_id}/lines", params=params, headers=OPERATOR)).json()
            lines += page["items"]
            cursor = page["next_cursor"]
            if cursor is None:
                return lines


async def left_out(payments: ServiceProcess, run_id: str) -> dict[str, str]:
    async with payments.client() as client:
        page = await client.get(f"/v1/runs/{run_id}/left-out", params={"limit": 1000}, headers=OPERATOR)
    return {r["household_id"]: r["reason"] for r in page.json()["items"]}


# --- the PSP simulator's outcomes, known in advance ------------------------------------------------


def psp_outcome(psp: ServiceProcess, pid: uuid.UUID) -> Outcome:
    env = psp.extra_env
    shares = Shares(
        float(env["PSP_PAID_SHARE"]), float(env["PSP_FAILED_SHARE"]), float(env["PSP_DUPLICATE_SHARE"])
    )
    return outcome_of(pid, shares, env["PSP_SEED"])


def household_id_with(
    psp: ServiceProcess, status: str, code: str, period: str, component: str, *, twice: bool | None = None
) -> str:
    """A household id whose first payment of (code, period, component) the PSP will report ``status``."""
    while True:
        household_id = uuid.uuid4()
        outcome = psp_outcome(psp, payment_id(code, period, household_id, component, 1))
        if outcome.status == status and twice in (None, outcome.report_twice):
            return str(household_id)


def expected_line(programme: ProgrammeVersion, household: dict[str, Any], key: str) -> Any:
    (line,) = calculate(programme, HouseholdSnapshot.model_validate(household), key)
    return line


# --- tests -----------------------------------------------------------------------------------------


def _mixed_households() -> list[dict[str, Any]]:
    """Every location category and poverty level, households small and large, vulnerable members of
    every kind, a member who left before the period and one who joined after it."""
    households = []
    for village, category in (("12010101", "PHNOM_PENH"), ("17010101", "OTHER_URBAN"), ("17020304", "RURAL")):
        for level in ("POOR_1", "POOR_2"):
            households.append(make_snapshot(village, category=category, level=level))
            large = [
                make_snapshot_member(date_of_birth="1975-01-01"),
                make_snapshot_member(sex="M", date_of_birth="1955-03-01", relationship="PARENT"),
                make_snapshot_member(date_of_birth="2017-01-01", relationship="CHILD", has_disability=True),
                make_snapshot_member(
                    sex="M", date_of_birth="2000-01-01", relationship="CHILD", lives_with_hiv=True
                ),
                make_snapshot_member(
                    sex="M", date_of_birth="1970-01-01", relationship="SPOUSE", left_on="2020-06-01"
                ),
                make_snapshot_member(
                    date_of_birth="2020-08-02", relationship="CHILD", joined_on="2020-08-02"
                ),
            ]
            households.append(make_snapshot(village, category=category, level=level, members=large))
    return households


async def test_covid_run_matches_the_calculator_line_by_line(stack, bus, payments, psp_simulator) -> None:
    programme = seed("COVID19_CT")
    payable = [*_mixed_households(), make_check_snapshot()]
    check_id = payable[-1]["household_id"]
    expired = make_snapshot(
        card={"card_number": "x", "status": "ACTIVE", "issued_on": "2017-01-01", "valid_until": "2020-05-31"}
    )
    not_enrolled, not_poor, card_expired = make_snapshot(), make_snapshot(level="NOT_POOR"), make_snapshot()
    await publish(
        bus,
        stack,
        programme,
        [
            *decisions_for("COVID19_CT", payable),
            make_decision(expired, "COVID19_CT"),
            make_decision(not_enrolled, "COVID19_CT", enrolled=False),
            make_decision(not_poor, "COVID19_CT", eligible=False, reasons=["NOT_POOR"]),
            make_decision(
                card_expired, "COVID19_CT", eligible=False, reasons=["CARD_EXPIRED", "NOT_ENROLLED"]
            ),
        ],
    )

    run = await created(payments, "COVID19_CT", period="2020-07")

    assert run["state"] == "CALCULATED"
    assert (run["available_from"], run["claim_until"]) == ("2020-07-25", "2020-08-23")
    assert run["left_out_reasons"] == {
        "CARD_NOT_ACTIVE": 1,
        "NOT_ENROLLED": 1,
        "NOT_POOR": 1,
        "CARD_EXPIRED": 1,
    }
    lines = {line["household_id"]: line for line in await all_lines(payments, run["run_id"])}
    assert set(lines) == {h["household_id"] for h in payable}
    for household in payable:
        expected, line = expected_line(programme, household, "2020-07"), lines[household["household_id"]]
        assert (line["amount_riel"], line["explanation"]) == (expected.amount_riel, expected.explanation)
        assert line["terms"] == [t._asdict() for t in expected.terms]
    assert lines[check_id]["amount_riel"] == 592_000
    assert lines[check_id]["explanation"] == "120,000 + 6 × 52,000 + 4 × 40,000 = 592,000"
    assert run["households"] == len(payable)
    assert run["amount_riel"] == sum(line["amount_riel"] for line in lines.values())
    by_category = {r["location_category"]: r["households"] for r in run["totals"]["by_location_category"]}
    assert by_category == {"PHNOM_PENH": 5, "OTHER_URBAN": 4, "RURAL": 4}
    by_level = {r["poverty_level"]: r["amount_riel"] for r in run["totals"]["by_poverty_level"]}
    assert by_level["POOR_1"] == sum(
        line["amount_riel"] for line in lines.values() if line["poverty_level"] == "POOR_1"
    )

    # Maker-checker: the creator can't approve, even holding the approver role; an operator can't either.
    for headers in (OPERATOR_AS_APPROVER, OPERATOR):
        refused = await approve(payments, run["run_id"], headers)
        assert refused.status_code == 403, refused.text
        assert refused.headers["content-type"] == "application/problem+json"
    approved = await approve(payments, run["run_id"])
    assert approved.status_code == 200, approved.text
    assert approved.json()["approved_by"] == "approver-1"
    reconciled = await wait_state(payments, run["run_id"], "RECONCILED")

    async with payments.client() as client:
        report = (await client.get(f"/v1/runs/{run['run_id']}/reconciliation", headers=OPERATOR)).json()
        report_csv = (await client.get(f"/v1/runs/{run['run_id']}/reconciliation.csv", headers=OPERATOR)).text
    predicted = Counter()
    for line in lines.values():
        predicted[psp_outcome(psp_simulator, uuid.UUID(line["payment_id"])).status] += line["amount_riel"]
    total = report["total"]
    assert total["expected_riel"] == reconciled["amount_riel"]
    assert (total["paid_riel"], total["failed_riel"], total["unclaimed_riel"]) == (
        predicted["PAID"],
        predicted["FAILED"],
        predicted["UNCLAIMED"],
    )
    assert total["pending_riel"] == 0
    assert sum(r["expected_households"] for r in report["by_province"]) == len(payable)
    rows = list(csv.DictReader(io.StringIO(report_csv)))
    assert rows[-1]["province_code"] == "TOTAL" and int(rows[-1]["paid_riel"]) == predicted["PAID"]


async def test_exports_of_an_approved_run_csv_and_pain001_valid_against_the_xsd(
    stack, bus, payments, psp_simulator
) -> None:
    programme = renamed(seed("COVID19_CT"), "EXPORT_TEST")
    households = [make_snapshot(), make_check_snapshot(), make_snapshot("17020304", category="RURAL")]
    await publish(bus, stack, programme, decisions_for("EXPORT_TEST", households))
    run = await created(payments, "EXPORT_TEST", period="2023-12")
    async with payments.client() as client:
        too_early = await client.get(f"/v1/runs/{run['run_id']}/export.xml", headers=OPERATOR)
        assert too_early.status_code == 409
        assert (await approve(payments, run["run_id"])).status_code == 200
        xml = await client.get(f"/v1/runs/{run['run_id']}/export.xml", headers=OPERATOR)
        exported = await client.get(f"/v1/runs/{run['run_id']}/export.csv", headers=OPERATOR)

    schema = xmlschema.XMLSchema(str(XSD))
    schema.validate(xml.text)  # raises with the first violation
    document = schema.to_dict(xml.text)
    header = document["CstmrCdtTrfInitn"]["GrpHdr"]
    assert int(header["NbOfTxs"]) == 3
    assert int(header["CtrlSum"]) == run["amount_riel"]
    amounts = [t["Amt"]["InstdAmt"] for t in document["CstmrCdtTrfInitn"]["PmtInf"][0]["CdtTrfTxInf"]]
    assert sorted(int(a["$"]) for a in amounts) == sorted(
        expected_line(programme, h, "2023-12").amount_riel for h in households
    )
    assert {a["@Ccy"] for a in amounts} == {"KHR"}
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert len(rows) == 3
    assert sum(int(r["amount_riel"]) for r in rows) == run["amount_riel"]
    assert {r["household_id"] for r in rows} == {h["household_id"] for h in households}


async def test_a_second_run_for_the_period_pays_only_the_rest(stack, bus, payments, psp_simulator) -> None:
    code, period = "SECOND_RUN_TEST", "2021-03"
    programme = renamed(seed("COVID19_CT"), code)
    fate = {
        s: [household_id_with(psp_simulator, s, code, period, "MONTHLY") for _ in range(2)] for s in FINAL
    }
    first = [make_snapshot(household_id=h) for ids in fate.values() for h in ids]
    await publish(bus, stack, programme, decisions_for(code, first))
    run1 = await paid_through(payments, code, period=period)
    first_lines = {line["household_id"]: line for line in await all_lines(payments, run1["run_id"])}
    assert {h: line["status"] for h, line in first_lines.items()} == {
        h: s for s, ids in fate.items() for h in ids
    }

    newcomers = [make_snapshot(), make_snapshot("17020304", category="RURAL")]
    await publish(bus, stack, programme, decisions_for(code, newcomers))
    run2 = await created(payments, code, period=period)

    lines = {line["household_id"]: line for line in await all_lines(payments, run2["run_id"])}
    assert set(lines) == set(fate["FAILED"]) | {h["household_id"] for h in newcomers}
    for household_id in fate["FAILED"]:  # a retry is a new payment for the PSP
        assert lines[household_id]["attempt"] == 2
        assert lines[household_id]["payment_id"] != first_lines[household_id]["payment_id"]
    assert await left_out(payments, run2["run_id"]) == {
        h: "ALREADY_PAID" for h in fate["PAID"] + fate["UNCLAIMED"]
    }

    # While run 2 waits for approval its households are taken: a third run finds nobody to pay.
    run3 = await created(payments, code, period=period)
    assert run3["households"] == 0
    assert run3["left_out_reasons"] == {"IN_ANOTHER_RUN": 4, "ALREADY_PAID": 4}
    assert (await approve(payments, run3["run_id"])).status_code == 409
    async with payments.client() as client:
        cancelled = await client.post(
            f"/v1/runs/{run3['run_id']}/cancellation", json={"reason": "nothing to pay"}, headers=OPERATOR
        )
    assert cancelled.json()["state"] == "CANCELLED"


async def _status_messages(stack: TestStack, run_id: str) -> list[ConsumerRecord]:
    return [r for r, _ in await run_records(stack, topics.STATUSES, run_id)]


async def run_records(
    stack: TestStack, topic: topics.Topic, run_id: str
) -> list[tuple[ConsumerRecord, dict[str, Any]]]:
    """The messages on ``topic`` of events of one run, with their envelopes."""
    consumer = AIOKafkaConsumer(
        stack.topic(topic.name),
        bootstrap_servers=stack.kafka_bootstrap,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        found: list[tuple[ConsumerRecord, dict[str, Any]]] = []
        while batch := await consumer.getmany(timeout_ms=1000):
            envelopes = [(r, orjson.loads(r.value)) for rs in batch.values() for r in rs]
            found += [(r, e) for r, e in envelopes if e["data"]["run_id"] == run_id]
        return found
    finally:
        await consumer.stop()


async def test_duplicate_and_contradicting_statuses_never_count_twice(
    stack, bus, payments, psp_simulator
) -> None:
    code, period = "DUPLICATES_TEST", "2021-05"
    programme = renamed(seed("COVID19_CT"), code)
    paid = [household_id_with(psp_simulator, "PAID", code, period, "MONTHLY", twice=True) for _ in range(3)]
    failed = household_id_with(psp_simulator, "FAILED", code, period, "MONTHLY", twice=True)
    households = [make_snapshot(household_id=h) for h in [*paid, failed]]
    await publish(bus, stack, programme, decisions_for(code, households))
    run = await paid_through(payments, code, period=period)
    report_before = await _reconciliation(payments, run["run_id"])

    messages = await _status_messages(stack, run["run_id"])
    assert len(messages) == 8  # the PSP reported every status twice, with distinct event ids
    producer = bus.producer
    topic = stack.topic(topics.STATUSES.name)
    for message in messages:  # and the broker delivers them all once more (same event ids)
        await producer.send(topic, message.value, key=message.key)
    contradiction = make_envelope(
        PaymentStatusReported(
            payment_id=payment_id(code, period, uuid.UUID(paid[0]), "MONTHLY", 1),
            run_id=uuid.UUID(run["run_id"]),
            household_id=uuid.UUID(paid[0]),
            status=PaymentStatus.FAILED,
            reason="LATE_REVERSAL",
            reported_at=datetime.now(UTC),
        ),
        source="test/psp",
        subject=paid[0],
        correlation_id="test",
    )
    await producer.send_and_wait(topic, contradiction.to_bytes(), key=paid[0].encode())
    group = f"payments.statuses.t{stack.run_id}"
    await wait_for(lambda: stack.caught_up(group, topic), timeout=30, what="statuses consumed")

    assert await _reconciliation(payments, run["run_id"]) == report_before
    lines = await all_lines(payments, run["run_id"])
    assert Counter(line["status"] for line in lines) == {"PAID": 3, "FAILED": 1}
    assert report_before["total"]["paid_households"] == 3
    assert report_before["total"]["paid_riel"] == sum(
        line["amount_riel"] for line in lines if line["status"] == "PAID"
    )
    async with payments.client() as client:
        exposition = (await client.get("/metrics")).text
    assert 'krousar_payments_statuses_total{outcome="contradicting",status="FAILED"} 1.0' in exposition


async def _reconciliation(payments: ServiceProcess, run_id: str) -> dict[str, Any]:
    async with payments.client() as client:
        return (await client.get(f"/v1/runs/{run_id}/reconciliation", headers=OPERATOR)).json()


async def test_killed_while_instructing_each_household_is_instructed_exactly_once(
    stack, bus, payments, psp_simulator
) -> None:
    code, period, count = "KILL_TEST", "2022-01", 1500
    programme = renamed(seed("COVID19_CT"), code)
    await publish(bus, stack, programme, decisions_for(code, [make_snapshot() for _ in range(count)]))
    run = await created(payments, code, period=period)
    run_id = run["run_id"]
    assert run["lines"] == count
    db = await stack.connect("payments")
    try:
        assert (await approve(payments, run_id)).status_code == 200

        async def instructing() -> dict[str, Any] | None:
            progress = (await get_run(payments, run_id))["progress"]
            return progress if progress and progress["phase"] == "INSTRUCTING" and progress["done"] else None

        progress = await wait_for(instructing, interval=0.01, what="instructions under way")
        payments.kill()
        instructed_at_kill = await _instructed(db, run_id)
        await payments.start()
        await wait_for(lambda: _instructed(db, run_id, count), timeout=60, what="every line instructed")

        assert progress["total"] == count
        assert 0 < instructed_at_kill < count, "the kill came too late to test anything"
        assert (
            await db.fetchval(
                "SELECT count(*) FROM line_states WHERE run_id = $1 AND instruction_id IS NULL",
                uuid.UUID(run_id),
            )
            == 0
        )
    finally:
        await db.close()
    await wait_state(payments, run_id, "RECONCILED", timeout=90)
    # Reconciled: every instruction reached the PSP. One event per payment on the topic (a batch
    # the relay sent again after the kill repeats its events, with the same ids).
    on_topic = await run_records(stack, topics.INSTRUCTIONS, run_id)
    instructions = Counter(
        payment for payment, _ in {(e["data"]["payment_id"], e["id"]) for _, e in on_topic}
    )
    assert len(instructions) == count and set(instructions.values()) == {1}
    psp = await stack.connect("psp_simulator")
    try:
        row = await psp.fetchrow(
            "SELECT count(*) AS payments, max(instructions_received) AS most FROM settlements"
            " WHERE run_id = $1",
            uuid.UUID(run_id),
        )
    finally:
        await psp.close()
    assert (row["payments"], row["most"]) == (count, 1)


async def _instructed(db: Any, run_id: str, expected: int | None = None) -> Any:
    found = await db.fetchval("SELECT count(*) FROM instructions WHERE run_id = $1", uuid.UUID(run_id))
    return found if expected is None else found == expected


async def test_flood_and_inflation_top_ups_pay_the_right_households_on_the_right_dates(
    stack, bus, payments, psp_simulator
) -> None:
    flood, inflation = seed("examples/FLOOD_2022"), seed("examples/INFLATION_2022")
    december = "2022-12-10"

    def flood_paid(status: str) -> str:
        return household_id_with(psp_simulator, status, "FLOOD_2022", december, "TOPUP")

    kandal_paid = make_snapshot("08010101", category="RURAL", household_id=flood_paid("PAID"))
    phnom_penh_paid = make_snapshot("12110101", category="PHNOM_PENH", household_id=flood_paid("PAID"))
    kandal_failed = make_snapshot("08010201", category="RURAL", household_id=flood_paid("FAILED"))
    phnom_penh_dry = make_snapshot("12010101", category="PHNOM_PENH")  # not an affected commune
    urban_dry = make_snapshot("17010101", category="OTHER_URBAN", level="POOR_2")
    rural_dry = make_snapshot("17020304", category="RURAL")
    affected = [kandal_paid, phnom_penh_paid, kandal_failed]
    everyone = [*affected, phnom_penh_dry, urban_dry, rural_dry]
    await publish(
        bus,
        stack,
        flood,
        [
            *decisions_for("FLOOD_2022", [*affected, phnom_penh_dry]),
            *decisions_for(
                "FLOOD_2022", [urban_dry, rural_dry], eligible=False, reasons=["AREA_NOT_TARGETED"]
            ),
        ],
    )
    await publish(bus, stack, inflation, decisions_for("INFLATION_2022", everyone))
    wrong_date = await create_run(payments, "FLOOD_2022", payment_date="2022-12-11")
    assert wrong_date.status_code == 422
    assert wrong_date.json()["errors"][0]["field"] == "period"

    flood_december = await paid_through(payments, "FLOOD_2022", payment_date=december)

    assert (flood_december["available_from"], flood_december["claim_until"]) == (december, "2023-01-08")
    flood_lines = {line["household_id"]: line for line in await all_lines(payments, flood_december["run_id"])}
    assert set(flood_lines) == {h["household_id"] for h in affected}
    for household in affected:  # 80,000 + 16,000/member + 16,000/vulnerable member, any location
        assert (
            flood_lines[household["household_id"]]["explanation"]
            == "80,000 + 2 × 16,000 + 0 × 16,000 = 112,000"
        )
    assert await left_out(payments, flood_december["run_id"]) == {
        phnom_penh_dry["household_id"]: "AREA_NOT_TARGETED",
        urban_dry["household_id"]: "AREA_NOT_TARGETED",
        rural_dry["household_id"]: "AREA_NOT_TARGETED",
    }

    inflation_december = await paid_through(payments, "INFLATION_2022", payment_date=december)

    december_lines = await all_lines(payments, inflation_december["run_id"])
    paid_in_december = {line["household_id"]: line for line in december_lines}
    excluded = {kandal_paid["household_id"], phnom_penh_paid["household_id"]}
    assert await left_out(payments, inflation_december["run_id"]) == dict.fromkeys(
        excluded, "EXCLUDED_BY_FLOOD_2022"
    )
    assert (
        set(paid_in_december) == {h["household_id"] for h in everyone} - excluded
    )  # FAILED flood: not paid by it
    amounts = {h: line["amount_riel"] for h, line in paid_in_december.items()}
    assert amounts[phnom_penh_dry["household_id"]] == 99_900 + 2 * 28_000
    assert amounts[urban_dry["household_id"]] == 87_300 + 2 * 24_000
    assert amounts[rural_dry["household_id"]] == 81_300 + 2 * 20_000
    assert amounts[kandal_failed["household_id"]] == 81_300 + 2 * 20_000

    inflation_april = await created(payments, "INFLATION_2022", payment_date="2023-04-10")
    assert inflation_april["households"] == len(everyone)  # the exclusion was for the first payment only
    assert inflation_april["available_from"] == "2023-04-10"
    flood_january = await created(payments, "FLOOD_2022", payment_date="2023-01-10")
    assert flood_january["households"] == len(affected)


async def test_one_calculation_per_programme_and_period_at_a_time(stack, bus, payments) -> None:
    code, period = "LOCK_TEST", "2021-09"
    await publish(bus, stack, renamed(seed("COVID19_CT"), code), decisions_for(code, [make_snapshot()]))
    headers = {**OPERATOR, "Idempotency-Key": f"lock-test-{stack.run_id}"}
    body = {"programme_code": code, "period": period}
    db = await stack.connect("payments")
    redis = Redis.from_url(stack.redis_url)
    try:
        # Another process is calculating this period: it holds the PostgreSQL lock.
        holder = db.transaction()
        await holder.start()
        await db.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", f"calculation:{code}:{period}"
        )
        async with payments.client() as client:
            first = await client.post("/v1/runs", json=body, headers=headers)
            retried = await client.post("/v1/runs", json=body, headers=headers)
            second = await client.post("/v1/runs", json=body, headers=OPERATOR)
            assert first.status_code == 202 and first.json()["state"] == "DRAFT"
            assert retried.json()["run_id"] == first.json()["run_id"]  # same Idempotency-Key, same run
            assert second.status_code == 409, second.text  # PostgreSQL said no: one DRAFT run per period
            assert second.json()["run_id"] == first.json()["run_id"]
            # And the Redis lock says no before PostgreSQL is asked.
            await redis.set(f"payments:calculation-lock:{code}:{period}", first.json()["run_id"], ex=30)
            third = await client.post("/v1/runs", json=body, headers=OPERATOR)
            assert third.status_code == 409
            await redis.delete(f"payments:calculation-lock:{code}:{period}")
        await holder.commit()
        calculated = await wait_state(payments, first.json()["run_id"], "CALCULATED", timeout=30)
        assert calculated["households"] == 1
    finally:
        await redis.aclose()
        await db.close()


async def test_a_run_over_the_budget_ceiling_is_calculated_but_not_approved(stack, bus, payments) -> None:
    code, period = "BUDGET_TEST", "2022-05"
    programme = renamed(seed("COVID19_CT"), code, budget_ceiling_riel=500_000)
    await publish(bus, stack, programme, decisions_for(code, [make_check_snapshot(), make_snapshot()]))
    run = await created(payments, code, period=period)
    assert run["state"] == "CALCULATED" and run["over_budget"] is True

    refused = await approve(payments, run["run_id"])

    assert refused.status_code == 422
    problem = refused.json()
    assert problem["budget_ceiling_riel"] == 500_000 and problem["amount_riel"] == run["amount_riel"]
    assert "exceeds the budget ceiling" in problem["detail"]
    async with payments.client() as client:
        cancelled = await client.post(
            f"/v1/runs/{run['run_id']}/cancellation", json={"reason": "over budget"}, headers=APPROVER
        )
        assert cancelled.json()["state"] == "CANCELLED"
        again = await client.post(
            f"/v1/runs/{run['run_id']}/cancellation", json={"reason": "twice"}, headers=APPROVER
        )
        assert again.status_code == 409
    rerun = await created(payments, code, period=period)  # cancelled lines hold nothing
    assert rerun["households"] == 2


def run_cli(url: str, user_token: str, *args: str) -> str:
    env = {**os.environ, "KROUSAR_PAYMENTS_URL": url, "KROUSAR_TOKEN": user_token, "COLUMNS": "200"}
    result = CliRunner().invoke(cli.app, list(args), env=env)
    assert result.exit_code == 0, result.output
    return result.output


async def test_a_monthly_run_from_the_terminal(stack, bus, payments, psp_simulator, tmp_path: Path) -> None:
    programme = renamed(seed("COVID19_CT"), "CLI_TEST")
    households = [make_snapshot(), make_snapshot("17020304", category="RURAL")]
    await publish(bus, stack, programme, [make_decision(h, "CLI_TEST") for h in households])
    operator = token("cli-operator", "payment_operator")
    approver = token("cli-approver", "payment_approver")

    created = run_cli(
        payments.url, operator, "runs", "create", "--programme", "CLI_TEST", "--period", "2021-01", "--watch"
    )
    run_id = created.split("run ", 1)[1].split()[0]
    assert "CALCULATED — 2 households" in created
    refused = CliRunner().invoke(
        cli.app,
        ["runs", "approve", run_id],
        env={"KROUSAR_PAYMENTS_URL": payments.url, "KROUSAR_TOKEN": operator},
    )
    assert refused.exit_code == 1 and "403" in refused.output
    approved = run_cli(payments.url, approver, "runs", "approve", run_id, "--watch")
    assert "RECONCILED" in approved
    shown = run_cli(payments.url, operator, "runs", "show", run_id)
    assert "by province" in shown
    out = tmp_path / "run.xml"
    run_cli(payments.url, operator, "runs", "export", run_id, "--format", "xml", "--out", str(out))
    xmlschema.XMLSchema(str(XSD)).validate(str(out))
    assert "TOTAL" in run_cli(payments.url, operator, "runs", "reconciliation", run_id)
