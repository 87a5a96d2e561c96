"""Poison messages go to <topic>.dlq with the reason, and the consumer keeps going."""

import asyncio

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.structs import RecordMetadata
from factories import make_snapshot
from krousar_common import topics
from krousar_common.events import make_envelope
from krousar_common.events.households import HouseholdRegistered, HouseholdSnapshot
from krousar_common.testing import TestStack, wait_for
from test_walking_skeleton import projected, register


def household_registered(snapshot: dict) -> bytes:
    """A HouseholdRegistered as the registry would publish it, for a snapshot of make_snapshot."""
    event = HouseholdRegistered(household=HouseholdSnapshot.model_validate(snapshot))
    envelope = make_envelope(
        event, source="test/registry", subject=snapshot["household_id"], correlation_id="test"
    )
    return envelope.to_bytes()


async def publish_households(stack: TestStack, messages: list[tuple[str, bytes]]) -> list[RecordMetadata]:
    """(key, value) messages on the session's household topic, in order; where each landed."""
    producer = AIOKafkaProducer(bootstrap_servers=stack.kafka_bootstrap, enable_idempotence=True)
    await producer.start()
    try:
        topic = stack.topic(topics.HOUSEHOLDS.name)
        sent = [await producer.send(topic, value, key=key.encode()) for key, value in messages]
        return list(await asyncio.gather(*sent))
    finally:
        await producer.stop()


async def _dead_letters(stack: TestStack, count: int, key: bytes = b"poison") -> list:
    consumer = AIOKafkaConsumer(
        stack.topic(topics.HOUSEHOLDS.dlq),
        bootstrap_servers=stack.kafka_bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
    )
    await consumer.start()
    try:
        found: list = []
        for _ in range(80):
            batch = await consumer.getmany(timeout_ms=250)
            found += [r for rs in batch.values() for r in rs if r.key == key]  # not other tests' poison
            if len(found) >= count:
                break
        return found
    finally:
        await consumer.stop()


async def test_poison_messages_are_dead_lettered_and_consumption_goes_on(
    stack, registration, eligibility
) -> None:
    poison = [
        b"{not json",
        b'{"id": "8b0f7f5e-7a55-4c44-9c1e-0d7f7f1d1111", "source": "x", "type": "krousar.Unknown",'
        b' "subject": "k", "correlation_id": "c", "schema_version": 1, "data": {}}',
        b'{"id": "8b0f7f5e-7a55-4c44-9c1e-0d7f7f1d2222", "source": "x",'
        b' "type": "krousar.HouseholdRegistered",'
        b' "subject": "k", "correlation_id": "c", "schema_version": 7, "data": {}}',
        b'{"id": "8b0f7f5e-7a55-4c44-9c1e-0d7f7f1d3333", "source": "x",'
        b' "type": "krousar.HouseholdRegistered",'
        b' "subject": "k", "correlation_id": "c", "schema_version": 1, "data": {"household": "wrong type"}}',
    ]
    producer = AIOKafkaProducer(bootstrap_servers=stack.kafka_bootstrap)
    await producer.start()
    try:
        await asyncio.gather(
            *[
                producer.send_and_wait(stack.topic(topics.HOUSEHOLDS.name), raw, key=b"poison")
                for raw in poison
            ]
        )
    finally:
        await producer.stop()

    after = await register(registration)  # a good event behind the poison on the same topic
    await wait_for(lambda: projected(eligibility, after), what="the good event after the poison")
    dead = await _dead_letters(stack, len(poison))

    assert sorted(r.value for r in dead) == sorted(poison)
    reasons = [dict(r.headers)["error"].decode() for r in dead]
    assert any("not a valid envelope" in r for r in reasons)
    assert any("unknown event type" in r for r in reasons)
    assert any("unsupported schema_version" in r for r in reasons)
    assert any("does not match its schema" in r for r in reasons)


async def test_after_poison_the_next_message_of_the_same_key_is_applied(stack, eligibility) -> None:
    snapshot = make_snapshot()
    household_id = snapshot["household_id"]
    good = household_registered(snapshot)
    wrong_type = orjson.loads(good)
    wrong_type["data"]["household"]["members"] = "none"
    poison = [b"{not json", orjson.dumps(wrong_type)]

    # One key, one partition: the good event sits right behind the poison.
    *dead, applied = await publish_households(stack, [(household_id, raw) for raw in [*poison, good]])
    assert {r.partition for r in [*dead, applied]} == {applied.partition}

    seen = await wait_for(lambda: projected(eligibility, household_id), what="the event behind the poison")
    assert seen["version"] == 1
    dead_lettered = await _dead_letters(stack, len(poison), key=household_id.encode())
    assert [r.value for r in dead_lettered] == poison
    assert [orjson.loads(dict(r.headers)["original"]) for r in dead_lettered] == [
        {"topic": stack.topic(topics.HOUSEHOLDS.name), "partition": r.partition, "offset": r.offset}
        for r in dead
    ]
    partition = TopicPartition(stack.topic(topics.HOUSEHOLDS.name), applied.partition)

    async def committed_past_the_good_event() -> bool:
        committed = await stack.committed_offsets(stack.group("eligibility.households"))
        return committed.get(partition, -1) > applied.offset

    await wait_for(committed_past_the_good_event, what="the offsets committed past all three")
