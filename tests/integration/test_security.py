"""Every endpoint of every service rejects a missing, expired or wrong-role token, and no log line
of any service in a run from registration to the PSP, nor a dead-letter header, carries HIV status,
names or national IDs."""

import re
import uuid
from datetime import date, timedelta

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord
from factories import RURAL_POOR_ANSWERS, make_household, make_member, make_topup, random_national_id
from krousar_common import topics
from krousar_common.testing import ServiceProcess, TestStack, bearer, token, wait_for
from test_eligibility import activate_topup
from test_payments import paid_through

OPEN = {
    "/health/live",
    "/health/ready",
    "/metrics",
    "/openapi.json",
    "/docs",
    "/docs/oauth2-redirect",
    "/redoc",
}
DUMMY = {
    "household_id": "6f1c2b4e-8d2a-4c47-9f55-1c2d3e4f5a6b",
    "village_code": "12010101",
    "commune_code": "120101",
    "district_code": "1201",
    "province_code": "12",
}


def operations(schema: dict) -> list[tuple[str, str]]:
    found = []
    for path, methods in schema["paths"].items():
        if path in OPEN:
            continue
        concrete = re.sub(
            r"\{(\w+)\}", lambda m: DUMMY.get(m.group(1), "6f1c2b4e-8d2a-4c47-9f55-1c2d3e4f5a6b"), path
        )
        found += [
            (method.upper(), concrete)
            for method in methods
            if method in {"get", "post", "put", "patch", "delete"}
        ]
    return found


async def _calls(service: ServiceProcess, headers: dict[str, str]) -> list[tuple[str, str, httpx.Response]]:
    async with service.client() as client:
        schema = (await client.get("/openapi.json")).json()
        return [(m, p, await client.request(m, p, headers=headers)) for m, p in operations(schema)]


@pytest.fixture(params=["registration", "eligibility", "topups", "payments"])
def service(request: pytest.FixtureRequest) -> ServiceProcess:
    return request.getfixturevalue(request.param)


async def test_missing_token_is_401_problem_json(service: ServiceProcess) -> None:
    for method, path, response in await _calls(service, {}):
        assert response.status_code == 401, (method, path, response.status_code)
        assert response.headers["content-type"] == "application/problem+json"


async def test_expired_token_is_401(service: ServiceProcess) -> None:
    expired = token("someone", "registry_admin", "programme_manager", ttl=timedelta(seconds=-5))
    for method, path, response in await _calls(service, {"Authorization": f"Bearer {expired}"}):
        assert response.status_code == 401, (method, path, response.status_code)


async def test_a_role_without_rights_is_403(service: ServiceProcess) -> None:
    nobody = token("someone", "no_such_role")
    for method, path, response in await _calls(service, {"Authorization": f"Bearer {nobody}"}):
        assert response.status_code == 403, (method, path, response.status_code)


async def test_logs_never_carry_hiv_status_names_or_national_ids(
    stack, registration, eligibility, topups, payments, psp_simulator
) -> None:
    """A household living with HIV registered, enrolled (its head the payee) and paid by a top-up of
    its commune, and a malformed copy of it sent to the DLQ: no service's log names any of it."""
    national_id = random_national_id()
    secret_name = "សុខ សម្ងាត់"
    staff = bearer("s", "commune_staff", communes=["17"])
    body = make_household(
        village_code="17020304",
        answers=RURAL_POOR_ANSWERS,
        members=[
            make_member(name_km=secret_name, national_id=national_id, lives_with_hiv=True),
            make_member(
                name_km="សុខ ដារ៉ា",
                sex="M",
                date_of_birth="2019-01-01",
                relationship="CHILD",
                lives_with_hiv=True,
            ),
        ],
    )
    code, payment_date = (
        f"LOGS_{uuid.uuid4().hex[:6].upper()}",
        (date.today() + timedelta(days=20)).isoformat(),
    )
    await activate_topup(topups, make_topup(code, payment_dates=[payment_date], communes=["170203"]))
    async with registration.client() as client:
        created = await client.post("/v1/households", json=body, headers=staff)
        assert created.status_code == 201, created.text
        await client.get(
            f"/v1/households/{created.json()['household_id']}", headers=bearer("a", "registry_admin")
        )
        await client.post("/v1/households", json=body, headers=staff)  # 409
    household_id = created.json()["household_id"]
    async with eligibility.client() as client:
        await wait_for(
            lambda: _known(client, household_id), what="the household in eligibility (so its consumer logged)"
        )
        enrolment = {"household_id": household_id, "identity_document": "NATIONAL_ID", "account": "012345678"}
        enrolled = await client.post("/v1/enrolments", json=enrolment, headers=staff)
        assert enrolled.status_code == 201, enrolled.text
    await wait_for(lambda: _payable(stack, code), what=f"payments told the household is payable by {code}")
    reconciled = await paid_through(payments, code, payment_date=payment_date)
    assert reconciled["households"] == 1  # this household, through the PSP
    poison_key = await _publish_malformed_household(stack, national_id, secret_name)
    (dead,) = await wait_for(lambda: _dead_letters(stack, poison_key), what="the malformed event in the DLQ")

    reason = dict(dead.headers)["error"].decode()
    assert "does not match its schema" in reason and "household.members.0.sex" in reason
    for service in (registration, eligibility, topups, payments, psp_simulator):
        text = service.log_path.read_text(encoding="utf-8")
        assert national_id not in text, service.name
        assert secret_name not in text, service.name
        assert "lives_with_hiv" not in text, service.name
    for text in (reason, str(dead.headers)):
        assert national_id not in text
        assert secret_name not in text
        assert "lives_with_hiv" not in text and "True" not in text


async def _payable(stack: TestStack, code: str) -> bool:
    conn = await stack.connect("payments")
    try:
        return await conn.fetchval(
            "SELECT coalesce(bool_or(eligible), false) FROM decisions WHERE programme_code = $1", code
        )
    finally:
        await conn.close()


async def _publish_malformed_household(stack: TestStack, national_id: str, name_km: str) -> bytes:
    """A HouseholdRegistered whose member lacks ``sex``: a validation error would quote the member."""
    household_id = str(uuid.uuid4())
    member = {
        "member_id": str(uuid.uuid4()),
        "name_km": name_km,
        "national_id": national_id,
        "date_of_birth": "1980-01-01",
        "relationship": "HEAD",
        "lives_with_hiv": True,
    }
    envelope = {
        "id": str(uuid.uuid4()),
        "source": "test",
        "type": "krousar.HouseholdRegistered",
        "subject": household_id,
        "correlation_id": "test-malformed",
        "schema_version": 1,
        "data": {"household": {"household_id": household_id, "version": 1, "members": [member]}},
    }
    producer = AIOKafkaProducer(bootstrap_servers=stack.kafka_bootstrap)
    await producer.start()
    try:
        topic = stack.topic(topics.HOUSEHOLDS.name)
        await producer.send_and_wait(topic, orjson.dumps(envelope), key=household_id.encode())
    finally:
        await producer.stop()
    return household_id.encode()


async def _dead_letters(stack: TestStack, key: bytes) -> list[ConsumerRecord]:
    consumer = AIOKafkaConsumer(
        stack.topic(topics.HOUSEHOLDS.dlq),
        bootstrap_servers=stack.kafka_bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
    )
    await consumer.start()
    try:
        found: list[ConsumerRecord] = []
        for _ in range(8):
            batch = await consumer.getmany(timeout_ms=250)
            found += [r for rs in batch.values() for r in rs if r.key == key]
        return found
    finally:
        await consumer.stop()


async def _known(client: httpx.AsyncClient, household_id: str) -> bool:
    response = await client.get(f"/v1/households/{household_id}", headers=bearer("v", "viewer"))
    return response.status_code == 200
