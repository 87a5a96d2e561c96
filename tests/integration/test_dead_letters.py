"""Poison messages go to <topic>.dlq with the reason, and the consumer keeps going."""

import asyncio

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.partitioner import DefaultPartitioner
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


async def publish_households(
    stack: TestStack, messages: list[tuple[str, bytes]], *, partition_of: str | None = None
) -> list[RecordMetadata]:
    """(key, value) messages on the session's household topic, in order; where each landed. With
    ``partition_of``, all go to the partition of that key, whatever their own key."""
    producer = AIOKafkaProducer(bootstrap_servers=stack.kafka_bootstrap, enable_idempotence=True)
    await producer.start()
    try:
        topic = stack.topic(topics.HOUSEHOLDS.name)
        partition = None
        if partition_of is not None:
            partitions = sorted(await producer.partitions_for(topic))
            partition = DefaultPartitioner()(partition_of.encode(), partitions, partitions)
        sent = [
            await producer.send(topic, value, key=key.encode(), partition=partition)
            for key, value in messages
        ]
        return list(await asyncio.gather(*sent))
    finally:
        await producer.stop()


async def _dead_letters(stack: TestStack, count: int, values: set[bytes] | None = None) -> list:
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
            # Not other tests' poison: poison is keyed "poison" (test_registration checks it is).
            found += [
                r
                for rs in batch.values()
                for r in rs
                if r.key == b"poison" and (values is None or r.value in values)
            ]
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


async def test_after_poison_the_next_message_on_its_partition_is_applied(stack, eligibility) -> None:
    snapshot = make_snapshot()
    household_id = snapshot["household_id"]
    good = household_registered(snapshot)
    wrong_type = orjson.loads(good)
    wrong_type["data"]["household"]["members"] = "none"
    poison = [b"{not json " + household_id.encode(), orjson.dumps(wrong_type)]

    # On the household's partition, right behind the poison: the household's event.
    dead = await publish_households(stack, [("poison", raw) for raw in poison], partition_of=household_id)
    (applied,) = await publish_households(stack, [(household_id, good)])
    assert {r.partition for r in [*dead, applied]} == {applied.partition}
    assert applied.offset > max(r.offset for r in dead)

    seen = await wait_for(lambda: projected(eligibility, household_id), what="the event behind the poison")
    assert seen["version"] == 1
    dead_lettered = await _dead_letters(stack, len(poison), values=set(poison))
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
