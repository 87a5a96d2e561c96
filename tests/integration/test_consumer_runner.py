"""The consumer runner stops cleanly on SIGTERM: the process exits 0 having committed exactly what
it applied, so a restart goes on from there and applies nothing twice. Eligibility runs on a
database and consumer group of its own, so only this test's stops and starts move its offsets."""

import asyncio
import signal
import uuid
from collections import defaultdict

import asyncpg
import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from factories import make_snapshot
from krousar_common import db, kafka, topics
from krousar_common.events import Envelope
from krousar_common.kafka import ConsumerRunner, ConsumerSpec
from krousar_common.testing import ServiceProcess, TestStack, wait_for
from pydantic import BaseModel
from test_dead_letters import household_registered, publish_households

EVENTS = 300


async def test_sigterm_commits_what_was_applied_and_a_restart_goes_on_from_there(stack: TestStack) -> None:
    suffix = f".t{stack.run_id}.sigterm"
    database = f"eligibility_sigterm_t{stack.run_id}"  # dropped with the session's databases
    eligibility = ServiceProcess(
        "eligibility",
        stack,
        ELIGIBILITY_DATABASE=database,
        ELIGIBILITY_CONSUMER_BATCH_SIZE="5",
        KROUSAR_GROUP_SUFFIX=suffix,
    )
    eligibility.log_path = eligibility.log_path.with_name(f"test-{stack.run_id}-eligibility-sigterm.log")
    await eligibility.start()
    snapshots = [make_snapshot() for _ in range(EVENTS)]
    messages = [(s["household_id"], household_registered(s)) for s in snapshots]
    landed = await publish_households(stack, messages)
    # event id → (partition, offset) where it landed
    where = {
        uuid.UUID(orjson.loads(raw)["id"]): (r.partition, r.offset)
        for (_, raw), r in zip(messages, landed, strict=True)
    }
    conn = await asyncpg.connect(f"{stack.pg_url}/{database}")
    try:
        await wait_for(lambda: _applied(conn, where), interval=0.01, what="the consumer to start applying")
        eligibility.stop()  # SIGTERM, in the middle of the stream
        # uvicorn shuts down, then re-raises the signal it caught: -SIGTERM is its clean exit.
        assert eligibility.process is not None and eligibility.process.returncode in (0, -signal.SIGTERM)
        assert _logged(eligibility, "runtime.stopped") == 1, "no graceful shutdown"

        applied = await _applied(conn, where)
        assert len(applied) < EVENTS, "the stop came too late to test anything"
        committed = await stack.committed_offsets(f"eligibility.households{suffix}")
        topic = stack.topic(topics.HOUSEHOLDS.name)
        for partition, offsets in _offsets_by_partition(where, applied).items():
            done = committed.get(TopicPartition(topic, partition), 0)
            before_commit = {o for p, o in where.values() if p == partition and o < done}
            # Applied but not committed would be applied again after the restart; committed but
            # not applied would be lost.
            assert offsets == before_commit, f"partition {partition}: applied ≠ committed (up to {done})"

        await eligibility.start()
        await wait_for(lambda: _all_applied(conn, where), timeout=90, what="every event applied")
    finally:
        await conn.close()
        eligibility.stop()


async def _applied(conn: asyncpg.Connection, where: dict[uuid.UUID, tuple[int, int]]) -> set[uuid.UUID]:
    rows = await conn.fetch(
        "SELECT event_id FROM inbox WHERE consumer LIKE 'eligibility.households%'"
        " AND event_id = ANY($1::uuid[])",
        list(where),
    )
    return {r["event_id"] for r in rows}


async def _all_applied(conn: asyncpg.Connection, where: dict[uuid.UUID, tuple[int, int]]) -> bool:
    return len(await _applied(conn, where)) == len(where)


def _offsets_by_partition(
    where: dict[uuid.UUID, tuple[int, int]], applied: set[uuid.UUID]
) -> dict[int, set[int]]:
    """The offsets applied, by partition; every partition that received events is listed."""
    found: dict[int, set[int]] = defaultdict(set)
    for event_id, (partition, offset) in where.items():
        found[partition] |= {offset} if event_id in applied else set()
    return found


def _logged(process: ServiceProcess, event: str) -> int:
    """How many times the process's log has the structlog event ``event``."""
    lines = process.log_path.read_text().splitlines()
    return sum(1 for line in lines if line.startswith("{") and orjson.loads(line).get("event") == event)


async def test_an_event_the_database_refuses_is_dead_lettered_alone(stack: TestStack, eligibility) -> None:
    """A batch is applied in one go; when the database refuses one event of it (a constraint), the
    batch is applied again one event at a time: that event goes to the DLQ, the others are applied
    once each, and an event delivered twice in the batch once."""
    topic = stack.topic(f"test.refused.{uuid.uuid4().hex[:8]}")
    await kafka.create_topics(stack.kafka_bootstrap, [topic, f"{topic}.dlq"], partitions=1, replication=1)
    pool = await db.create_pool(f"{stack.pg_url}/{stack.database('eligibility')}", min_size=1, max_size=2)
    table = f"refused_{uuid.uuid4().hex[:8]}"
    await pool.execute(
        f"CREATE TABLE {table} (household_id uuid PRIMARY KEY, version int CHECK (version < 5))"
    )

    async def handler(conn: asyncpg.Connection, envelope: Envelope, event: BaseModel) -> None:
        household = event.household  # type: ignore[attr-defined]
        await conn.execute(f"INSERT INTO {table} VALUES ($1, $2)", household.household_id, household.version)

    good = [household_registered(make_snapshot()) for _ in range(3)]
    refused = household_registered(make_snapshot(version=7))
    producer = kafka.make_producer(stack.kafka_bootstrap, client_id="test-refused")
    await producer.start()
    runner = ConsumerRunner(
        ConsumerSpec(topic=topic, group=f"refused-{stack.run_id}", handler=handler),
        pool=pool,
        producer=producer,
        bootstrap=stack.kafka_bootstrap,
        service="test",
    )
    try:
        for value in (good[0], refused, good[1], good[0], good[2]):  # good[0] delivered twice
            await producer.send_and_wait(topic, value, key=b"k")
        running = asyncio.create_task(runner.run())
        dead = await wait_for(lambda: _records(stack, f"{topic}.dlq"), what="the refused event in the DLQ")
        runner.stop()
        await running
        rows = await pool.fetch(f"SELECT household_id FROM {table}")
    finally:
        await producer.stop()
        await pool.execute(f"DROP TABLE {table}")
        await pool.close()
        await kafka.delete_topics(stack.kafka_bootstrap, [topic, f"{topic}.dlq"])

    assert [r.value for r in dead] == [refused]
    assert "check" in dict(dead[0].headers)["error"].decode().lower()
    applied = sorted(str(r["household_id"]) for r in rows)
    assert applied == sorted(orjson.loads(g)["data"]["household"]["household_id"] for g in good)


async def _records(stack: TestStack, topic: str) -> list:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=stack.kafka_bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    try:
        batches = await consumer.getmany(timeout_ms=1000)
        return [r for records in batches.values() for r in records]
    finally:
        await consumer.stop()
