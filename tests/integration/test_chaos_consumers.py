"""Every Kafka consumer killed with -9 in the middle of a batch and started again ends in the state a
clean run ends in: no event lost, no effect applied twice.

The consumers of eligibility and payments (in batches of 5): a service's own topics get a known set
of events for each of its consumers at once; a clean twin of the service (a database and
consumer groups of its own) applies them undisturbed, while the service under test is killed once
every one of its consumers has applied some, and started again; then both states are compared row
by row, and both inboxes with the events sent. The two consumers that apply whole batches (the
PSP's instructions, payments' statuses) are killed in turn in the middle of a payment run, whose
end is known from the PSP's outcome of each payment id. Registration and topups consume nothing.
"""

import asyncio
import functools
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer
from factories import make_decision, make_snapshot
from krousar_common import topics
from krousar_common.events import make_envelope
from krousar_common.events.eligibility import EligibilityDecided
from krousar_common.events.households import HouseholdRegistered, HouseholdWithdrawn
from krousar_common.events.payments import PaymentInstructed, PaymentStatus, PaymentStatusReported
from krousar_common.events.programmes import ProgrammeVersionPublished
from krousar_common.programmes import ProgrammeStatus
from krousar_common.testing import ServiceProcess, TestStack, wait_for
from payment_runs import approved_run
from pydantic import BaseModel
from test_payments import psp_outcome, renamed, run_records, seed, wait_state

Keyed = tuple[str, BaseModel]
T = TypeVar("T")
BATCH = "5"  # messages a batch: a kill -9 almost surely lands inside one


def household_events(count: int) -> list[Keyed]:
    """Households registered, each withdrawn right after (version 2 replaces version 1)."""
    events: list[Keyed] = []
    for household in (make_snapshot() for _ in range(count // 2)):
        withdrawn = {**household, "version": 2, "status": "WITHDRAWN"}
        key = household["household_id"]
        events += [
            (key, HouseholdRegistered(household=household)),
            (key, HouseholdWithdrawn(household=withdrawn, reason="moved")),
        ]
    return events


VERSIONS = (ProgrammeStatus.ACTIVE, ProgrammeStatus.ACTIVE, ProgrammeStatus.DRAFT)


def programme_events(count: int) -> list[Keyed]:
    """Versions 1 and 2 (both ACTIVE) of programmes of their own, and a DRAFT version 3 of each."""
    events: list[Keyed] = []
    for i in range(count // 3):
        code = f"CHAOS_{i:03d}"
        for version, status in enumerate(VERSIONS, start=1):
            programme = renamed(seed("COVID19_CT"), code, version=version, status=status)
            events.append((code, ProgrammeVersionPublished(programme=programme)))
    return events


def instruction_events(count: int) -> list[Keyed]:
    run_id = uuid.uuid4()
    return [
        (
            str(household_id),
            PaymentInstructed(
                payment_id=uuid.uuid4(),
                run_id=run_id,
                household_id=household_id,
                programme_code="COVID19_CT",
                period="2023-03",
                component="MONTHLY",
                amount_riel=120_000,
                payee_name="សុខ ចាន់",
                channel="WING",
                available_from="2023-03-01",
                claim_until="2023-05-31",
            ),
        )
        for household_id in (uuid.uuid4() for _ in range(count))
    ]


def status_events(count: int) -> list[Keyed]:
    """Two reports a payment: FAILED, then PAID five minutes later (the later one stands)."""
    run_id, at = uuid.uuid4(), datetime(2023, 3, 10, tzinfo=UTC)
    events: list[Keyed] = []
    while len(events) < count:
        payment, household = uuid.uuid4(), uuid.uuid4()
        for status, minutes in ((PaymentStatus.FAILED, 0), (PaymentStatus.PAID, 5))[: count - len(events)]:
            report = PaymentStatusReported(
                payment_id=payment,
                run_id=run_id,
                household_id=household,
                status=status,
                reported_at=at + timedelta(minutes=minutes),
            )
            events.append((str(household), report))
    return events


def decision_events(count: int) -> list[Keyed]:
    decisions = [make_decision(make_snapshot(), "COVID19_CT") for _ in range(count)]
    return [(d["household_id"], EligibilityDecided.model_validate(d)) for d in decisions]


@dataclass(frozen=True)
class Consumer:
    topic: topics.Topic
    group: str
    events: Callable[[int], list[Keyed]]
    count: int
    # Its effect as rows in the service's database, without the times the service stamps itself.
    state: tuple[str, ...]


CONSUMERS = {
    "eligibility": [
        # Programmes first: their re-evaluations find no household to decide yet.
        Consumer(
            topics.TOPUPS,
            "eligibility.programmes",
            programme_events,
            60,
            (
                "SELECT code, version, status, definition FROM programmes ORDER BY code",
                # A re-evaluation requested for each version put in force: applied twice, two.
                "SELECT programmes, reason, requested_by FROM evaluation_runs ORDER BY programmes, reason",
            ),
        ),
        Consumer(
            topics.HOUSEHOLDS,
            "eligibility.households",
            household_events,
            300,
            ("SELECT household_id, version, status, snapshot FROM households ORDER BY household_id",),
        ),
        Consumer(
            topics.INSTRUCTIONS,
            "eligibility.payment-instructions",
            instruction_events,
            300,
            ("SELECT payment_id, household_id, programme_code, period FROM payment_instructions ORDER BY 1",),
        ),
        Consumer(
            topics.STATUSES,
            "eligibility.payment-statuses",
            status_events,
            300,
            ("SELECT payment_id, household_id, status, reported_at FROM payment_statuses ORDER BY 1",),
        ),
    ],
    "payments": [
        Consumer(
            topics.TOPUPS,
            "payments.programmes",
            programme_events,
            150,
            ("SELECT code, version, status, definition FROM programme_versions ORDER BY code, version",),
        ),
        Consumer(
            topics.DECISIONS,
            "payments.decisions",
            decision_events,
            300,
            ("SELECT * FROM decisions ORDER BY programme_code, household_id",),
        ),
    ],
}


@pytest.fixture
async def own_topics() -> AsyncIterator[TestStack]:
    """Topics, databases and groups of the test's own: its topics hold only the events it sends."""
    stack = TestStack()
    await stack.create_topics()
    yield stack
    await stack.drop()


async def publish(stack: TestStack, topic: topics.Topic, events: list[Keyed]) -> list[uuid.UUID]:
    """Send the events in order (by key: a household's, a programme's, on one partition); their ids."""
    producer = AIOKafkaProducer(bootstrap_servers=stack.kafka_bootstrap, linger_ms=5)
    await producer.start()
    try:
        ids = []
        for key, event in events:
            envelope = make_envelope(event, source="test/chaos", subject=key, correlation_id="chaos")
            await producer.send(stack.topic(topic.name), envelope.to_bytes(), key=key.encode())
            ids.append(envelope.id)
        await producer.flush()
    finally:
        await producer.stop()
    return ids


async def kill_once_under_way(process: ServiceProcess, under_way: Callable[[], Awaitable[T]]) -> T:
    """SIGKILL ``process`` as soon as ``under_way`` answers (something truthy); its answer right after."""
    await wait_for(under_way, interval=0.01, what=f"{process.name} under way")
    process.kill()
    return await under_way()


class Instance:
    """A service process, its database, and the suffix of the consumer groups it joins."""

    def __init__(self, process: ServiceProcess, database: str, suffix: str) -> None:
        self.process, self.database, self.suffix = process, database, suffix

    async def connect(self) -> asyncpg.Connection:
        return await asyncpg.connect(f"{self.process.stack.pg_url}/{self.database}")

    async def caught_up(self, consumer: Consumer) -> bool:
        topic = self.process.stack.topic(consumer.topic.name)
        return await self.process.stack.caught_up(consumer.group + self.suffix, topic)

    async def state(self, consumer: Consumer) -> tuple[list[list[tuple[Any, ...]]], list[uuid.UUID]]:
        """The consumer's effect, and the ids of the events its inbox holds."""
        conn = await self.connect()
        try:
            effect = [[tuple(row) for row in await conn.fetch(query)] for query in consumer.state]
            inbox = await conn.fetch(
                "SELECT event_id FROM inbox WHERE consumer = $1 ORDER BY event_id",
                consumer.group + self.suffix,
            )
        finally:
            await conn.close()
        return effect, [row["event_id"] for row in inbox]


def instances(service: str, stack: TestStack) -> tuple[Instance, Instance]:
    """The service under test, and its clean twin (a database and consumer groups of its own)."""
    batch = {f"{service.upper()}_CONSUMER_BATCH_SIZE": BATCH}
    # Payments under test makes every batch of decisions ready in its worker processes (a national
    # evaluation's path), its twin in the service process: the same state, killed or not.
    offloaded = {"PAYMENTS_DECISION_WORKERS_FROM": "1"} if service == "payments" else {}
    under_test = Instance(
        ServiceProcess(service, stack, **batch, **offloaded), stack.database(service), stack.group("")
    )
    suffix = f".clean{stack.group('')}"
    database = f"{service}_clean_t{stack.run_id}"  # dropped with the stack's databases
    twin = ServiceProcess(
        service,
        stack,
        **batch,
        **{f"{service.upper()}_DATABASE": database, "PAYMENTS_DECISION_WORKERS_FROM": "0"},
        KROUSAR_GROUP_SUFFIX=suffix,
    )
    twin.log_path = twin.log_path.with_name(f"test-{stack.run_id}-{service}-clean.log")
    return under_test, Instance(twin, database, suffix)


@pytest.mark.parametrize("service", CONSUMERS)
async def test_each_consumer_killed_mid_batch_ends_as_a_clean_run(
    service: str, own_topics: TestStack
) -> None:
    stack, consumers = own_topics, CONSUMERS[service]
    under_test, twin = instances(service, stack)
    groups = [consumer.group + under_test.suffix for consumer in consumers]
    try:
        await asyncio.gather(twin.process.start(), under_test.process.start())
        conn = await under_test.connect()
        try:
            # Every topic at once: the consumers apply side by side, and one kill cuts each short.
            sent = await asyncio.gather(*(publish(stack, c.topic, c.events(c.count)) for c in consumers))

            async def every_consumer_applying() -> dict[str, int] | None:
                rows = await conn.fetch(
                    "SELECT consumer, count(*) FROM inbox WHERE consumer = ANY($1) GROUP BY consumer", groups
                )
                return {r["consumer"]: r["count"] for r in rows} if len(rows) == len(groups) else None

            applied_at_kill = await kill_once_under_way(under_test.process, every_consumer_applying)
            await under_test.process.start()
        finally:
            await conn.close()
        states = {}
        for consumer in consumers:
            for instance in (under_test, twin):
                done = functools.partial(instance.caught_up, consumer)
                await wait_for(done, timeout=60, what=f"{consumer.group}{instance.suffix} to catch up")
            states[consumer.group] = (await under_test.state(consumer), await twin.state(consumer))
    finally:
        under_test.process.kill()
        twin.process.kill()

    for consumer, group, ids in zip(consumers, groups, sent, strict=True):
        (effect, inbox), (clean_effect, clean_inbox) = states[consumer.group]
        assert applied_at_kill[group] < consumer.count, f"{consumer.group}: killed too late"
        assert inbox == clean_inbox == sorted(ids), consumer.group  # every event applied, each once
        assert effect == clean_effect, consumer.group
        assert all(effect), f"{consumer.group}: the clean run did nothing to compare with"


# --- the batch consumers, in a payment run --------------------------------------------------------

HOUSEHOLDS = 2000
PSP_SHARES = {"PSP_PAID_SHARE": "0.5", "PSP_FAILED_SHARE": "0.3", "PSP_DUPLICATE_SHARE": "0.5"}


async def test_batch_consumers_killed_mid_batch_settle_and_reconcile_each_payment_once(
    own_topics: TestStack,
) -> None:
    stack = own_topics
    payments_env = {
        "PAYMENTS_STATUS_BATCH_SIZE": "10",
        "PAYMENTS_RESUME_INTERVAL_SECONDS": "1",
        "PAYMENTS_RECONCILE_INTERVAL_SECONDS": "0.5",
    }
    psp_env = {
        "PSP_INSTRUCTION_BATCH_SIZE": "10",
        "PSP_SETTLE_DELAY_SECONDS": "0.2",
        "PSP_UNCLAIMED_DELAY_SECONDS": "1",
        "PSP_REPORT_INTERVAL_SECONDS": "0.2",
        "PSP_SEED": f"chaos-{stack.run_id}",
        **PSP_SHARES,
    }
    async with approved_run(stack, HOUSEHOLDS, payments_env=payments_env, psp_env=psp_env) as under_way:
        payments, psp, ledger, bank, run = (
            under_way.payments,
            under_way.psp,
            under_way.ledger,
            under_way.bank,
            under_way.run,
        )
        run_id = uuid.UUID(run["run_id"])
        settlements = functools.partial(
            bank.fetchval, "SELECT count(*) FROM settlements WHERE run_id = $1", run_id
        )
        settled_at_kill = await kill_once_under_way(psp, settlements)
        await psp.start()
        outcomes = functools.partial(
            ledger.fetchval,
            "SELECT count(*) FROM line_outcomes JOIN payment_lines l USING (payment_id) WHERE run_id = $1",
            run_id,
        )
        reported_at_kill = await kill_once_under_way(payments, outcomes)
        await payments.start()
        await wait_state(payments, run["run_id"], "RECONCILED", timeout=120)
        held = await bank.fetch(
            "SELECT payment_id, status, report_twice, instructions_received FROM settlements"
            " WHERE run_id = $1",
            run_id,
        )
        states = await ledger.fetch("SELECT payment_id, state FROM line_states WHERE run_id = $1", run_id)
        tallies = await ledger.fetch(
            "SELECT state, sum(lines)::int AS lines FROM line_tallies WHERE run_id = $1 GROUP BY state",
            run_id,
        )

    assert 0 < settled_at_kill < run["lines"], "the PSP was killed too late to test anything"
    assert 0 < reported_at_kill < run["lines"], "payments was killed too late to test anything"
    # What a clean run ends in: the PSP's outcome of each payment id is drawn from the id alone.
    expected = {pid: psp_outcome(psp, pid).status.value for pid in (row["payment_id"] for row in states)}
    assert len(expected) == run["lines"] == HOUSEHOLDS
    assert {row["payment_id"]: row["status"] for row in held} == expected  # each payment instructed
    assert {row["instructions_received"] for row in held} == {1}  # ... once
    assert {row["payment_id"]: row["state"] for row in states} == expected
    # Tallies move with every status applied: one applied twice would count its line twice.
    assert {row["state"]: row["lines"] for row in tallies if row["lines"]} == Counter(expected.values())
    published = await run_records(stack, topics.STATUSES, run["run_id"])
    reports = Counter(uuid.UUID(e["data"]["payment_id"]) for e in {e["id"]: e for _, e in published}.values())
    assert reports == {row["payment_id"]: 1 + row["report_twice"] for row in held}
