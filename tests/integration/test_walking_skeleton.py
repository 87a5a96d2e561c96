"""Foundation: one household event flows registration → outbox → Kafka → eligibility, exactly once."""

import asyncio
import uuid

import asyncpg
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from factories import make_household
from krousar_common import topics
from krousar_common.testing import ServiceProcess, TestStack, bearer, wait_for

STAFF = bearer("staff-1", "commune_staff", communes=["120101"])
VIEWER = bearer("viewer-1", "viewer")


async def register(registration: ServiceProcess, **over: object) -> str:
    async with registration.client() as client:
        response = await client.post("/v1/households", json=make_household(**over), headers=STAFF)
    assert response.status_code == 201, response.text
    return response.json()["household_id"]


async def projected(eligibility: ServiceProcess, household_id: str) -> dict | None:
    async with eligibility.client() as client:
        response = await client.get(f"/v1/households/{household_id}", headers=VIEWER)
    return response.json() if response.status_code == 200 else None


async def test_registered_household_reaches_eligibility(registration, eligibility) -> None:
    household_id = await register(registration)

    seen = await wait_for(lambda: projected(eligibility, household_id), what="household in eligibility")

    assert seen["version"] == 1
    assert seen["snapshot"]["village_code"] == "12010101"
    assert seen["snapshot"]["poverty_level"] == "POOR_1"


async def test_bad_input_is_422_problem_json_naming_the_field(registration) -> None:
    body = make_household(village_code="99999999")
    async with registration.client() as client:
        unknown_village = await client.post("/v1/households", json=body, headers=STAFF)
        not_a_date = await client.post(
            "/v1/households", json=make_household(interviewed_on="soon"), headers=STAFF
        )

    assert unknown_village.status_code == 422
    assert unknown_village.headers["content-type"] == "application/problem+json"
    assert unknown_village.json()["errors"][0]["field"] == "village_code"
    assert not_a_date.status_code == 422
    assert not_a_date.json()["errors"][0]["field"] == "interviewed_on"


async def _read_household_events(stack: TestStack, household_id: str) -> list[bytes]:
    consumer = AIOKafkaConsumer(
        stack.topic(topics.HOUSEHOLDS.name),
        bootstrap_servers=stack.kafka_bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
    )
    await consumer.start()
    try:
        found: list[bytes] = []
        for _ in range(40):
            batch = await consumer.getmany(timeout_ms=250)
            found += [r.value for rs in batch.values() for r in rs if r.key == household_id.encode()]
            if found:
                return found
        return found
    finally:
        await consumer.stop()


async def test_redelivered_event_has_one_effect(stack, registration, eligibility) -> None:
    household_id = await register(registration)
    await wait_for(lambda: projected(eligibility, household_id), what="first delivery applied")
    (raw,) = await _read_household_events(stack, household_id)

    topic = stack.topic(topics.HOUSEHOLDS.name)
    producer = AIOKafkaProducer(bootstrap_servers=stack.kafka_bootstrap)
    await producer.start()
    try:  # the same envelope, delivered twice more (same key: same partition, after the first)
        sent = [await producer.send_and_wait(topic, raw, key=household_id.encode()) for _ in range(2)]
    finally:
        await producer.stop()
    partition = TopicPartition(topic, sent[-1].partition)

    async def consumed_duplicates() -> bool:
        committed = await stack.committed_offsets(stack.group("eligibility.households"))
        return committed.get(partition, -1) > sent[-1].offset

    await wait_for(consumed_duplicates, what="eligibility to commit past both duplicates")

    event_id = uuid.UUID(orjson.loads(raw)["id"])
    conn = await stack.connect("eligibility")
    try:
        assert await conn.fetchval("SELECT count(*) FROM inbox WHERE event_id = $1", event_id) == 1
        assert (
            await conn.fetchval(
                "SELECT count(*) FROM households WHERE household_id = $1", uuid.UUID(household_id)
            )
            == 1
        )
    finally:
        await conn.close()


async def test_consumer_killed_mid_batch_loses_nothing(stack, registration, eligibility) -> None:
    eligibility.kill()
    ids = list(await asyncio.gather(*(register(registration) for _ in range(200))))
    registry = await stack.connect("registration")
    projection = await stack.connect("eligibility")
    try:
        event_ids = await published_event_ids(stack, registry, ids)

        async def applied() -> int:
            return await projection.fetchval(
                "SELECT count(*) FROM households WHERE household_id = ANY($1::uuid[])", ids
            )

        await eligibility.start()
        await wait_for(applied, interval=0.01, what="the consumer to start applying")
        eligibility.kill()  # batches of 5: almost surely in the middle of one
        applied_before_restart = await applied()
        await eligibility.start()
        await wait_for(lambda: _is(applied, len(ids)), timeout=60, what="every household applied")

        assert applied_before_restart < len(ids), "the kill came too late to test anything"
        inbox = await projection.fetchval(
            "SELECT count(*) FROM inbox WHERE event_id = ANY($1::uuid[])", event_ids
        )
        assert inbox == len(event_ids) == len(ids)
    finally:
        await registry.close()
        await projection.close()


async def _is(probe, expected: int) -> bool:
    return await probe() == expected


async def published_event_ids(
    stack: TestStack, registry: asyncpg.Connection, keys: list[str]
) -> list[uuid.UUID]:
    """The ids of the events published with these keys: read from the topic, once the relay has
    sent (and so deleted) every outbox row."""

    async def outbox_empty() -> bool:
        return await registry.fetchval("SELECT count(*) FROM outbox") == 0

    await wait_for(outbox_empty, timeout=30, what="registration's outbox sent")
    consumer = AIOKafkaConsumer(
        stack.topic(topics.HOUSEHOLDS.name),
        bootstrap_servers=stack.kafka_bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        wanted, found = {k.encode() for k in keys}, []
        while batch := await consumer.getmany(timeout_ms=1000):
            records = [r for rs in batch.values() for r in rs]
            found += [uuid.UUID(orjson.loads(r.value)["id"]) for r in records if r.key in wanted]
        return list(dict.fromkeys(found))  # a row sent again by a relay cut short is one event
    finally:
        await consumer.stop()
