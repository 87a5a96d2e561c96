"""Eligibility on the real stack: registry and programme events in, decisions (with reasons) out on
``eligibility.decisions.v1``; enrolment, card revocation, area-targeted top-ups, PWYC conditions,
FLOOD/INFLATION exclusion and replay into empty projections."""

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg
import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from eligibility.app import DEFINITION
from factories import RURAL_POOR_ANSWERS, example_topup, make_household, make_member, make_topup
from krousar_common import db, topics
from krousar_common.events import make_envelope
from krousar_common.events.payments import PaymentInstructed, PaymentStatus, PaymentStatusReported
from krousar_common.testing import ServiceProcess, TestStack, bearer, wait_for

STAFF = bearer("staff-1", "commune_staff", communes=["120101", "121101", "010201"])
OTHER_STAFF = bearer("staff-2", "commune_staff", communes=["080101"])
STAFF_121101 = bearer("staff-3", "commune_staff", communes=["121101"])
ADMIN = bearer("admin-1", "registry_admin")
MANAGER = bearer("manager-1", "programme_manager")
HEALTH = bearer("nurse-1", "health_staff")
VIEWER = bearer("viewer-1", "viewer")
ELDERLY = {"name_km": "សុខ យាយ", "sex": "F", "date_of_birth": "1950-03-03", "relationship": "PARENT"}
RICH_ANSWERS = {
    "roof": "TILE_OR_CONCRETE",
    "walls": "BRICK_OR_CONCRETE",
    "floor_area_m2": 200,
    "house_condition": "GOOD",
    "tenure": "OWNED",
    "earners": 2,
    "transport": "CAR_OR_TRACTOR",
    "valuables": 6,
    "food_shortage_months": 0,
    "shock_12m": False,
}


class Decisions:
    """Every decision published in this session, collected in the background, latest per
    (household, programme)."""

    def __init__(self, stack: TestStack) -> None:
        self.latest: dict[tuple[str, str], dict[str, Any]] = {}
        self.count: dict[tuple[str, str], int] = {}
        self._consumer = AIOKafkaConsumer(
            stack.topic(topics.DECISIONS.name),
            bootstrap_servers=stack.kafka_bootstrap,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            group_id=None,
        )

    async def collect(self) -> None:
        while True:
            for records in (await self._consumer.getmany(timeout_ms=200)).values():
                for record in records:
                    data = orjson.loads(record.value)["data"]
                    for decision in data["decisions"]:  # each with what the event says of them all
                        key = (data["household_id"], decision["programme_code"])
                        self.latest[key] = {**data, **decision}
                        self.count[key] = self.count.get(key, 0) + 1

    async def wait(
        self, household_id: str, programme: str, check: Callable[[dict], bool] = bool, **expected: Any
    ) -> dict[str, Any]:
        """The latest decision once it has the ``expected`` fields (e.g. ``eligible=True``) and
        passes ``check``."""

        async def matching() -> dict[str, Any] | None:
            found = self.latest.get((household_id, programme))
            has = found and all(found.get(k) == v for k, v in expected.items()) and check(found)
            return found if has else None

        return await wait_for(
            matching, timeout=30, what=f"{programme} decision {expected} for {household_id}"
        )


@pytest.fixture(scope="module")
async def decisions(stack: TestStack) -> AsyncIterator[Decisions]:
    collector = Decisions(stack)
    await collector._consumer.start()
    task = asyncio.create_task(collector.collect())
    yield collector
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await collector._consumer.stop()


@pytest.fixture(scope="module")
async def services(registration, topups, eligibility) -> dict[str, ServiceProcess]:
    return {"registration": registration, "topups": topups, "eligibility": eligibility}


async def register(registration: ServiceProcess, **over: Any) -> str:
    async with registration.client() as client:
        response = await client.post("/v1/households", json=make_household(**over), headers=STAFF)
    assert response.status_code == 201, response.text
    return response.json()["household_id"]


def with_elderly(**over: Any) -> dict[str, Any]:
    """A poor household of three whose grandmother makes FAMILY_PACKAGE pay (elderly allowance)."""
    members = [make_member(), make_member(**ELDERLY)]
    return {"members": members, **over}


async def enrol(eligibility: ServiceProcess, household_id: str, headers: dict[str, str] = STAFF) -> Any:
    body = {"household_id": household_id, "identity_document": "NATIONAL_ID", "account": "012345678"}
    async with eligibility.client() as client:
        return await client.post("/v1/enrolments", json=body, headers=headers)


async def projected(eligibility: ServiceProcess, household_id: str) -> bool:
    async with eligibility.client() as client:
        return (await client.get(f"/v1/households/{household_id}", headers=VIEWER)).status_code == 200


async def activate_topup(topups: ServiceProcess, body: dict[str, Any]) -> None:
    """Create and activate a top-up; one that exists already (defined by another test) is fine."""
    async with topups.client() as client:
        created = await client.post("/v1/topups", json=body, headers=MANAGER)
        assert created.status_code in (201, 409), created.text
        activated = await client.post(f"/v1/topups/{body['code']}/activate", headers=MANAGER)
        assert activated.status_code in (200, 409), activated.text


# --- decisions with reasons ------------------------------------------------------------------------


async def test_registered_households_get_decisions_with_reasons(services, decisions) -> None:
    poor = await register(services["registration"], **with_elderly())
    rich = await register(services["registration"], answers=RICH_ANSWERS)

    await decisions.wait(poor, "FAMILY_PACKAGE", eligible=False, reasons=["NOT_ENROLLED"])
    await decisions.wait(poor, "PWYC", reasons=["NOT_ENROLLED", "NOTHING_PAYABLE"])
    rich_decision = await decisions.wait(rich, "FAMILY_PACKAGE", eligible=False)
    assert rich_decision["reasons"] == ["NOT_POOR", "NO_ACTIVE_CARD", "NOT_ENROLLED"]
    assert rich_decision["household"]["household_id"] == rich
    assert rich_decision["enrolment"] is None
    # COVID19_CT ended in March 2024: decided (and shown) but, as a first decision, not published
    async with services["eligibility"].client() as client:
        view = (await client.get(f"/v1/households/{poor}/eligibility", headers=VIEWER)).json()
    covid = next(p for p in view["programmes"] if p["programme_code"] == "COVID19_CT")
    assert covid["decision_in_force"]["reasons"] == ["PROGRAMME_NOT_RUNNING"]
    assert (poor, "COVID19_CT") not in decisions.latest


async def test_enrolment_makes_eligible_and_card_revocation_takes_it_away(services, decisions) -> None:
    registration, eligibility = services["registration"], services["eligibility"]
    household_id = await register(registration, **with_elderly())
    await decisions.wait(household_id, "FAMILY_PACKAGE", reasons=["NOT_ENROLLED"])

    assert (await enrol(eligibility, household_id, OTHER_STAFF)).status_code == 403
    enrolled = await enrol(eligibility, household_id)
    assert enrolled.status_code == 201, enrolled.text
    assert {"programme_code": "FAMILY_PACKAGE", "eligible": True} in [
        {k: d[k] for k in ("programme_code", "eligible")} for d in enrolled.json()["decisions"]
    ]
    eligible = await decisions.wait(household_id, "FAMILY_PACKAGE", eligible=True)
    assert eligible["enrolment"]["payee_type"] == "HEAD"
    assert eligible["enrolment"]["account"] == "012345678"

    async with registration.client() as client:
        etag = (await client.get(f"/v1/households/{household_id}", headers=ADMIN)).headers["etag"]
        revoked = await client.post(
            f"/v1/households/{household_id}/card/revocation",
            json={"reason": "fraud found by the commune council"},
            headers={**ADMIN, "If-Match": etag},
        )
    assert revoked.status_code == 200, revoked.text
    await decisions.wait(household_id, "FAMILY_PACKAGE", eligible=False, reasons=["NO_ACTIVE_CARD"])


async def test_enrolment_withdrawal_and_history(services, decisions) -> None:
    eligibility = services["eligibility"]
    household_id = await register(services["registration"], **with_elderly())
    await wait_for(lambda: projected(eligibility, household_id), what="household projected")
    first = (await enrol(eligibility, household_id)).json()
    second = (await enrol(eligibility, household_id)).json()  # a new payee account: replaces the first
    path = f"/v1/households/{household_id}"
    async with eligibility.client() as client:
        refused = [
            (await client.get(f"{path}{view}", headers=OTHER_STAFF)).status_code
            for view in ("", "/eligibility", "/enrolments")
        ]
        refused_withdrawal = await client.post(
            f"/v1/enrolments/{second['enrolment_id']}/withdrawal",
            json={"reason": "moved to Thailand"},
            headers=OTHER_STAFF,
        )
        withdrawn = await client.post(
            f"/v1/enrolments/{second['enrolment_id']}/withdrawal",
            json={"reason": "moved to Thailand"},
            headers=STAFF,
        )
        history = (await client.get(f"{path}/enrolments", headers=STAFF)).json()

    assert refused == [403, 403, 403]
    assert refused_withdrawal.status_code == 403
    assert withdrawn.status_code == 200, withdrawn.text
    assert [(e["enrolment_id"], e["status"]) for e in history] == [
        (first["enrolment_id"], "REPLACED"),
        (second["enrolment_id"], "WITHDRAWN"),
    ]
    await decisions.wait(household_id, "FAMILY_PACKAGE", eligible=False, reasons=["NOT_ENROLLED"])


# --- a top-up for two communes ---------------------------------------------------------------------


async def test_topup_for_two_communes_covers_only_their_households(services, decisions) -> None:
    registration, eligibility = services["registration"], services["eligibility"]
    households = {
        "120101": await register(registration),
        "121101": await register(registration, village_code="12110101"),
        "010201": await register(registration, village_code="01020101", answers=dict(RURAL_POOR_ANSWERS)),
    }
    for household_id in households.values():
        await wait_for(lambda h=household_id: projected(eligibility, h), what="household projected")
        assert (await enrol(eligibility, household_id)).status_code == 201
    soon = date.today() + timedelta(days=20)
    code = f"STORM_{uuid.uuid4().hex[:6].upper()}"
    dates = [soon.isoformat(), (soon + timedelta(days=30)).isoformat()]
    await activate_topup(
        services["topups"], make_topup(code, payment_dates=dates, communes=["120101", "121101"])
    )

    for commune in ("120101", "121101"):
        decision = await decisions.wait(households[commune], code, eligible=True)
        assert decision["programme_version"] == 1
    outside = await decisions.wait(households["010201"], code, eligible=False)
    assert outside["reasons"] == ["OUTSIDE_TARGET_AREA"]

    async with eligibility.client() as client:
        view = (await client.get(f"/v1/households/{households['120101']}/eligibility", headers=VIEWER)).json()
        page = (
            await client.get(f"/v1/programmes/{code}/beneficiaries", params={"limit": 1}, headers=VIEWER)
        ).json()
        rest = (
            await client.get(
                f"/v1/programmes/{code}/beneficiaries",
                params={"limit": 1, "cursor": page["next_cursor"]},
                headers=VIEWER,
            )
        ).json()
        funnel = (await client.get("/v1/coverage", params={"programme": code}, headers=VIEWER)).json()
        scoped = {
            period: await client.get(
                f"/v1/programmes/{code}/beneficiaries",
                params=period and {"period": period},
                headers=STAFF_121101,
            )
            for period in (None, dates[1])  # from the decisions in force; decided on the fly
        }
        refused = await client.get(
            f"/v1/programmes/{code}/beneficiaries", params={"commune": "120101"}, headers=STAFF_121101
        )

    (payment,) = next(p for p in view["programmes"] if p["programme_code"] == code)["payments"]
    assert (payment["payment_key"], payment["amount_riel"]) == (dates[0], 120_000)
    assert payment["lines"][0]["explanation"] == "100,000 + 2 × 10,000 = 120,000"
    listed = {item["household_id"] for item in page["items"] + rest["items"]}
    assert listed == {households["120101"], households["121101"]}
    for response in scoped.values():  # commune staff see their own commune's beneficiaries only
        assert [item["household_id"] for item in response.json()["items"]] == [households["121101"]]
    assert refused.status_code == 403
    assert funnel["totals"]["enrolled"] == 2
    by_commune = {c["commune_code"]: c for c in funnel["by_commune"]}
    assert by_commune["010201"]["poor"] >= 1 and by_commune["010201"]["enrolled"] == 0


# --- PWYC conditions -------------------------------------------------------------------------------


async def test_pwyc_conditions_beyond_the_maximum_are_kept_and_rejected(services, decisions) -> None:
    eligibility = services["eligibility"]
    household_id = await register(services["registration"])
    await wait_for(lambda: projected(eligibility, household_id), what="household projected")
    await enrol(eligibility, household_id)
    await decisions.wait(household_id, "PWYC", reasons=["NOTHING_PAYABLE"])
    pregnancy = str(uuid.uuid4())

    outcomes = []
    async with eligibility.client() as client:
        for day in ("2026-01-05", "2026-02-05", "2026-03-05", "2026-04-05", "2026-05-05"):
            body = {
                "kind": "ANTENATAL_VISIT",
                "occurred_on": day,
                "facility_code": "HC-120101",
                "subject_id": pregnancy,
            }
            response = await client.post(
                f"/v1/households/{household_id}/conditions", json=body, headers=HEALTH
            )
            assert response.status_code == 201, response.text
            outcomes.append(response.json())
        as_viewer = await client.post(f"/v1/households/{household_id}/conditions", json=body, headers=VIEWER)

    assert [o["accepted"] for o in outcomes] == [True, True, True, True, False]
    assert outcomes[0]["amount_riel"] == 80_000 and outcomes[0]["explanation"] == "1 × 80,000 = 80,000"
    assert outcomes[-1]["rejection_reason"] == "MAXIMUM_REACHED"
    assert as_viewer.status_code == 403
    eligible = await decisions.wait(household_id, "PWYC", lambda d: len(d["conditions"]) == 5, eligible=True)
    assert eligible["enrolment"] is not None


# --- a second instance: replay into empty projections, then a rehearsal held at 1 December 2022 ---


async def _quiet(conn: asyncpg.Connection) -> bool:
    pending = await conn.fetchval("SELECT count(*) FROM pending")
    runs = await conn.fetchval("SELECT count(*) FROM evaluation_runs WHERE status IN ('PENDING', 'RUNNING')")
    return pending == 0 and runs == 0


async def _decisions(conn: asyncpg.Connection) -> list[tuple[Any, ...]]:
    rows = await conn.fetch(
        "SELECT household_id, programme_code, programme_version, eligible, reasons, payment_key, amount_riel"
        " FROM decisions ORDER BY household_id, programme_code"
    )
    return [tuple(r) for r in rows]


async def _copy_owned_state(source: asyncpg.Connection, target: asyncpg.Connection) -> None:
    """Enrolments and conditions are eligibility's own state, not projections: a rebuild keeps them."""
    for table in ("enrolments", "conditions"):
        rows = await source.fetch(f"SELECT * FROM {table}")
        if rows:
            columns = list(rows[0].keys())
            await target.copy_records_to_table(table, records=[tuple(r) for r in rows], columns=columns)


@pytest.fixture(scope="module")
async def replica(stack: TestStack, services: dict[str, ServiceProcess]) -> AsyncIterator[ServiceProcess]:
    """A second eligibility process on a fresh database with its own consumer groups: it reads the
    same topics from the start, and publishes nothing (payments must not see it)."""
    database = f"eligibility_replica_t{stack.run_id}"
    live = await stack.connect("eligibility")
    await db.migrate(stack.pg_url, database, DEFINITION.migrations)
    target = await asyncpg.connect(f"{stack.pg_url}/{database}")
    try:
        await wait_for(lambda: _quiet(live), timeout=60, what="the live eligibility to settle")
        await _copy_owned_state(live, target)
    finally:
        await live.close()
        await target.close()
    process = ServiceProcess(
        "eligibility",
        stack,
        ELIGIBILITY_DATABASE=database,
        KROUSAR_GROUP_SUFFIX=f".replica.t{stack.run_id}",
        ELIGIBILITY_PUBLISH_DECISIONS="false",
    )
    await process.start()
    yield process
    process.stop()


async def test_replaying_the_topics_into_empty_projections_gives_the_same_decisions(stack, replica) -> None:
    live = await stack.connect("eligibility")
    copy = await asyncpg.connect(f"{stack.pg_url}/eligibility_replica_t{stack.run_id}")
    try:
        assert len(await _decisions(live)) > 20

        async def same() -> bool:
            return await _quiet(copy) and await _decisions(copy) == await _decisions(live)

        await wait_for(same, timeout=60, interval=0.5, what="the replay to reach the live decisions")
    finally:
        await live.close()
        await copy.close()


async def publish_flood_payment(stack: TestStack, household_id: str) -> None:
    """What payments and the PSP would publish: FLOOD_2022's December payment, PAID."""
    payment_id, run_id, household = uuid.uuid4(), uuid.uuid4(), uuid.UUID(household_id)
    instructed = PaymentInstructed(
        payment_id=payment_id,
        run_id=run_id,
        household_id=household,
        programme_code="FLOOD_2022",
        period="2022-12-10",
        component="TOPUP",
        amount_riel=112_000,
        payee_name="សុខ ចាន់",
        channel="WING",
        available_from=date(2022, 12, 10),
        claim_until=date(2023, 1, 8),
    )
    paid = PaymentStatusReported(
        payment_id=payment_id,
        run_id=run_id,
        household_id=household,
        status=PaymentStatus.PAID,
        reported_at=datetime(2022, 12, 11, 3, tzinfo=UTC),
    )
    producer = AIOKafkaProducer(bootstrap_servers=stack.kafka_bootstrap)
    await producer.start()
    try:
        for topic, event in ((topics.INSTRUCTIONS, instructed), (topics.STATUSES, paid)):
            envelope = make_envelope(
                event, source="test/payments", subject=household_id, correlation_id="test"
            )
            await producer.send_and_wait(
                stack.topic(topic.name), envelope.to_bytes(), key=household_id.encode()
            )
    finally:
        await producer.stop()


async def decision_in(
    process: ServiceProcess, household_id: str, code: str, **expected: Any
) -> dict[str, Any]:
    """The decision in force in ``process`` once it has the ``expected`` fields."""

    async def matching() -> dict[str, Any] | None:
        async with process.client() as client:
            view = (await client.get(f"/v1/households/{household_id}/eligibility", headers=VIEWER)).json()
        found = next((p for p in view.get("programmes", []) if p["programme_code"] == code), None)
        stored = found and found["decision_in_force"]
        return stored if stored and all(stored.get(k) == v for k, v in expected.items()) else None

    return await wait_for(matching, timeout=30, what=f"{code} {expected} for {household_id}")


async def test_households_paid_by_flood_in_december_are_excluded_from_inflations_first_payment(
    stack, services, replica
) -> None:
    await activate_topup(services["topups"], example_topup("FLOOD_2022"))
    await activate_topup(services["topups"], example_topup("INFLATION_2022"))
    in_flood_area = {"village_code": "12110101", "interviewed_on": "2022-06-01"}
    paid_by_flood = await register(services["registration"], **in_flood_area)
    not_paid = await register(services["registration"], **in_flood_area)
    async with replica.client() as client:
        held = await client.post("/v1/evaluations", json={"on": "2022-12-01"}, headers=MANAGER)
    assert held.status_code == 202, held.text
    for household_id in (paid_by_flood, not_paid):
        await wait_for(lambda h=household_id: projected(replica, h), what="household projected")
        assert (await enrol(replica, household_id)).status_code == 201
    await decision_in(replica, paid_by_flood, "INFLATION_2022", eligible=True, payment_key="2022-12-10")

    await publish_flood_payment(stack, paid_by_flood)

    excluded = await decision_in(replica, paid_by_flood, "INFLATION_2022", eligible=False)
    assert excluded["reasons"] == ["EXCLUDED_BY_FLOOD_2022"]
    await decision_in(replica, not_paid, "INFLATION_2022", eligible=True)
    async with replica.client() as client:
        april = await client.get(
            f"/v1/households/{paid_by_flood}/eligibility", params={"period": "2023-04"}, headers=VIEWER
        )
        clock = (await client.get("/v1/clock", headers=VIEWER)).json()
    (second,) = next(p for p in april.json()["programmes"] if p["programme_code"] == "INFLATION_2022")[
        "payments"
    ]
    assert (second["payment_key"], second["eligible"], second["amount_riel"]) == (
        "2023-04-10",
        True,
        99_900 + 2 * 28_000,
    )
    assert (clock["day"], clock["held"]) == ("2022-12-01", True)
