"""Poison messages go to <topic>.dlq with the reason, and the consumer keeps going."""

import asyncio

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from krousar_common import topics
from krousar_common.testing import TestStack, wait_for
from test_walking_skeleton import projected, register


async def _dead_letters(stack: TestStack, count: int) -> list:
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
            found += [r for rs in batch.values() for r in rs if r.key == b"poison"]  # not other tests' poison
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
