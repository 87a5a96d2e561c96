"""The programme catalogue: seeded routine programmes, the top-up lifecycle and its validation."""

import copy
import uuid
from typing import Any

import asyncpg
import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from factories import example_topup, make_topup
from krousar_common import topics
from krousar_common.testing import ServiceProcess, TestStack, bearer, wait_for

MANAGER = bearer("manager-1", "programme_manager")
VIEWER = bearer("viewer-1", "viewer")
SEEDED = {"COVID19_CT", "PWYC", "FAMILY_PACKAGE"}


async def partitions_of(stack: TestStack, topic: str) -> list[TopicPartition]:
    admin = AIOKafkaAdminClient(bootstrap_servers=stack.kafka_bootstrap)
    await admin.start()
    try:
        (described,) = await admin.describe_topics([topic])
    finally:
        await admin.close()
    return [TopicPartition(topic, p["partition"]) for p in described["partitions"]]


async def read_topic(stack: TestStack, name: str) -> list[tuple[bytes, bytes]]:
    """(key, value) of every message on the session's topic ``name`` so far."""
    topic = stack.topic(name)
    partitions = await partitions_of(stack, topic)
    consumer = AIOKafkaConsumer(bootstrap_servers=stack.kafka_bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        found: list[tuple[bytes, bytes]] = []
        while [tp for tp, end in ends.items() if await consumer.position(tp) < end]:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                found += [(r.key, r.value) for r in records]
        return found
    finally:
        await consumer.stop()


async def published(stack: TestStack, *, key: str | None = None) -> list[dict[str, Any]]:
    """Every ProgrammeVersionPublished the topups service published so far (of programme ``key``
    when given), in order. Other test modules publish on this topic too, as stand-ins."""
    messages = [
        orjson.loads(v)
        for k, v in await read_topic(stack, topics.TOPUPS.name)
        if key is None or k == key.encode()
    ]
    return [m for m in messages if m["source"] == "krousar/topups"]


async def post(topups: ServiceProcess, path: str, body: Any = None, **headers: str) -> Any:
    async with topups.client() as client:
        return await client.post(path, json=body, headers={**MANAGER, **headers})


def unique(code: str) -> str:
    return f"{code}_{uuid.uuid4().hex[:6].upper()}"


async def test_routine_programmes_are_seeded_and_published_once(stack, topups) -> None:
    async with topups.client() as client:
        listed = (await client.get("/v1/programmes", headers=VIEWER)).json()
    assert {p["code"] for p in listed} >= SEEDED
    assert all(p["active_version"] == 1 for p in listed if p["code"] in SEEDED)

    topups.stop()  # a second start seeds nothing and publishes nothing
    await topups.start()

    async def seed_events() -> list[dict[str, Any]]:
        events = await published(stack)
        return [e for e in events if e["subject"] in SEEDED]

    events = await wait_for(seed_events, what="the seed published")
    assert sorted(e["subject"] for e in events) == sorted(SEEDED)
    covid = next(e for e in events if e["subject"] == "COVID19_CT")["data"]["programme"]
    assert covid["rate_tables"][0]["rates"]["PHNOM_PENH"]["POOR_1"]["per_member"] == 52_000


async def test_flood_and_inflation_are_definable_exactly_as_written(stack, topups) -> None:
    flood, inflation = example_topup("FLOOD_2022"), example_topup("INFLATION_2022")
    excluding_unknown = copy.deepcopy(inflation)
    excluding_unknown["code"] = unique("INFLATION")
    excluding_unknown["target"]["exclusions"][0]["programme_code"] = unique("NO_SUCH_TOPUP")

    unknown = await post(topups, "/v1/topups", excluding_unknown)
    assert unknown.status_code == 422, unknown.text
    assert unknown.json()["errors"][0]["field"] == "target.exclusions.0.programme_code"

    for body in (flood, inflation):  # FLOOD first: INFLATION's exclusion names it
        created = await post(topups, "/v1/topups", body)
        if created.status_code == 201:  # (another test module may have defined them already)
            assert (created.json()["status"], created.json()["version"]) == ("DRAFT", 1)
            assert (await post(topups, f"/v1/topups/{body['code']}/activate")).status_code == 200
        else:
            assert created.status_code == 409, created.text
        async with topups.client() as client:
            stored = (await client.get(f"/v1/programmes/{body['code']}", headers=VIEWER)).json()
        assert stored["versions"][-1]["definition"] == {**body, "status": "ACTIVE"}

    async def inflation_in_force() -> list[dict[str, Any]]:
        return [e for e in await published(stack, key="INFLATION_2022") if status_of(e) == (1, "ACTIVE")]

    (event,) = await wait_for(inflation_in_force, what="INFLATION published ACTIVE")
    programme = event["data"]["programme"]
    assert programme["target"]["exclusions"] == [
        {"programme_code": "FLOOD_2022", "paid_in": ["2022-12"], "applies_to": ["2022-12-10"]}
    ]


async def test_invalid_definitions_are_422_naming_the_field(topups) -> None:
    base = make_topup(unique("BAD"), payment_dates=["2027-01-10"])

    def broken(path: list[Any], value: Any) -> dict[str, Any]:
        body = copy.deepcopy(base)
        node = body
        for step in path[:-1]:
            node = node[step]
        node[path[-1]] = value
        return body

    cases = {
        "target.communes.0": broken(["target", "communes"], ["129999"]),
        "target.provinces.0": broken(["target", "provinces"], ["26"]),
        "rate_tables.0.rates.RURAL.POOR_1.base": broken(
            ["rate_tables", 0, "rates", "RURAL"],
            {
                "POOR_1": {"base": -1, "per_member": 0, "per_vulnerable": 0},
                "POOR_2": base["rate_tables"][0]["rates"]["RURAL"]["POOR_2"],
            },
        ),
        "calendar.PAYMENT_DATES.payment_dates": broken(
            ["calendar", "payment_dates"], ["2027-02-10", "2027-01-10"]
        ),
        "kind": broken(["kind"], "ROUTINE"),
    }
    for field, body in cases.items():
        response = await post(topups, "/v1/topups", body)
        assert response.status_code == 422, (field, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert field in [e["field"] for e in response.json()["errors"]], (field, response.json())

    fractional = broken(["rate_tables", 0, "rates", "RURAL", "POOR_1", "base"], 100_000.5)
    assert (await post(topups, "/v1/topups", fractional)).status_code == 422
    async with topups.client() as client:
        as_viewer = await client.post("/v1/topups", json=base, headers=VIEWER)
    assert as_viewer.status_code == 403


async def test_lifecycle_draft_active_new_version_closed(stack, topups) -> None:
    code = unique("QUAKE")
    body = make_topup(code, payment_dates=["2027-01-10", "2027-02-10"], provinces=["12"])
    assert (await post(topups, "/v1/topups", body)).status_code == 201

    body["title"] = "Earthquake top-up (edited draft)"
    async with topups.client() as client:
        edited = await client.put(f"/v1/topups/{code}", json=body, headers=MANAGER)
    assert edited.status_code == 200 and edited.json()["definition"]["title"] == body["title"]

    assert (await post(topups, f"/v1/topups/{code}/activate")).status_code == 200
    async with topups.client() as client:
        frozen = await client.put(f"/v1/topups/{code}", json=body, headers=MANAGER)
    assert frozen.status_code == 409

    second = await post(topups, f"/v1/topups/{code}/versions")
    assert (second.json()["version"], second.json()["status"]) == (2, "DRAFT")
    body["rate_tables"][0]["rates"]["RURAL"]["POOR_1"]["base"] = 120_000
    async with topups.client() as client:
        assert (await client.put(f"/v1/topups/{code}", json=body, headers=MANAGER)).status_code == 200
    assert (await post(topups, f"/v1/topups/{code}/activate")).json()["version"] == 2
    closed = await post(topups, f"/v1/topups/{code}/close")
    assert (closed.json()["version"], closed.json()["status"]) == (2, "CLOSED")

    async with topups.client() as client:
        versions = (await client.get(f"/v1/programmes/{code}", headers=VIEWER)).json()["versions"]
    assert [(v["version"], v["status"], v["superseded_by"]) for v in versions] == [
        (1, "CLOSED", 2),
        (2, "CLOSED", None),
    ]

    events = await wait_for(lambda: published_times(stack, code, 8), what=f"{code} published eight times")
    # Every write publishes the versions it wrote, as stored; a superseded one after its successor.
    assert [status_of(e) for e in events] == [
        (1, "DRAFT"),
        (1, "DRAFT"),
        (1, "ACTIVE"),
        (2, "DRAFT"),
        (2, "DRAFT"),
        (2, "ACTIVE"),
        (1, "CLOSED"),
        (2, "CLOSED"),
    ]
    assert events[1]["data"]["programme"]["title"] == "Earthquake top-up (edited draft)"
    assert events[4]["data"]["programme"]["rate_tables"][0]["rates"]["RURAL"]["POOR_1"]["base"] == 120_000


def status_of(event: dict[str, Any]) -> tuple[int, str]:
    programme = event["data"]["programme"]
    return programme["version"], programme["status"]


async def published_times(stack: TestStack, code: str, times: int) -> list[dict[str, Any]]:
    events = await published(stack, key=code)
    return events if len(events) >= times else []


async def test_drafts_are_published_but_neither_decided_nor_paid(
    stack, topups, eligibility, payments
) -> None:
    code = unique("STORM")
    body = make_topup(code, payment_dates=["2027-01-10"], provinces=["12"])
    decisions, catalogue = await stack.connect("eligibility"), await stack.connect("payments")
    try:
        assert (await post(topups, "/v1/topups", body)).status_code == 201
        await wait_for(lambda: _versions(catalogue, code, [(1, "DRAFT")]), what="payments to hold the DRAFT")
        async with payments.client() as client:
            run = await client.post(
                "/v1/runs",
                json={"programme_code": code, "payment_date": "2027-01-10"},
                headers=bearer("operator-1", "payment_operator"),
            )
        assert run.status_code == 422, run.text
        assert "no ACTIVE version (v1 DRAFT)" in run.json()["detail"]
        await wait_for(
            lambda: _consumed_by_eligibility(stack, decisions, code, 1), what="eligibility past it"
        )
        assert await _held_by_eligibility(decisions, code) is None

        assert (await post(topups, f"/v1/topups/{code}/activate")).status_code == 200
        assert (await post(topups, f"/v1/topups/{code}/versions")).status_code == 200
        async with topups.client() as client:
            edited = await client.put(
                f"/v1/topups/{code}", json={**body, "title": "v2 draft"}, headers=MANAGER
            )
        assert edited.status_code == 200, edited.text
        await wait_for(
            lambda: _consumed_by_eligibility(stack, decisions, code, 4), what="eligibility past the v2 DRAFT"
        )
        in_force = await _held_by_eligibility(decisions, code)
        assert (in_force["version"], in_force["status"], in_force["title"]) == (1, "ACTIVE", body["title"])
        expected = [(1, "ACTIVE"), (2, "DRAFT")]
        await wait_for(lambda: _versions(catalogue, code, expected), what="payments to hold both versions")

        assert (await post(topups, f"/v1/topups/{code}/close")).status_code == 200
        await wait_for(
            lambda: _consumed_by_eligibility(stack, decisions, code, 6), what="eligibility past the close"
        )
        closed = await _held_by_eligibility(decisions, code)
        assert (closed["version"], closed["status"]) == (1, "CLOSED")  # the dropped v2 never took its place
        expected = [(1, "CLOSED"), (2, "CLOSED")]
        await wait_for(lambda: _versions(catalogue, code, expected), what="payments to hold both closed")
    finally:
        await decisions.close()
        await catalogue.close()


async def _versions(payments_db: asyncpg.Connection, code: str, expected: list[tuple[int, str]]) -> bool:
    rows = await payments_db.fetch(
        "SELECT version, status FROM programme_versions WHERE code = $1 ORDER BY version", code
    )
    return [(r["version"], r["status"]) for r in rows] == expected


async def _consumed_by_eligibility(
    stack: TestStack, eligibility_db: asyncpg.Connection, code: str, count: int
) -> bool:
    """Eligibility has taken in (its inbox holds) the first ``count`` events of ``code``."""
    events = (await published(stack, key=code))[:count]
    if len(events) < count:
        return False
    ids = [uuid.UUID(e["id"]) for e in events]
    return await eligibility_db.fetchval("SELECT count(*) FROM inbox WHERE event_id = ANY($1)", ids) == count


async def _held_by_eligibility(eligibility_db: asyncpg.Connection, code: str) -> asyncpg.Record | None:
    return await eligibility_db.fetchrow(
        "SELECT version, status, definition->>'title' AS title FROM programmes WHERE code = $1", code
    )


async def test_idempotency_key_replays_the_first_answer(topups) -> None:
    body = make_topup(unique("IDEM"), payment_dates=["2027-03-10"])
    key = {"Idempotency-Key": str(uuid.uuid4())}

    first = await post(topups, "/v1/topups", body, **key)
    again = await post(topups, "/v1/topups", body, **key)
    other = await post(topups, "/v1/topups", body)

    assert first.status_code == again.status_code == 201
    assert again.headers.get("idempotent-replayed") == "true"
    assert again.json() == first.json()
    assert other.status_code == 409
