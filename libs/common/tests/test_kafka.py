"""The consumer runner reports its lag on a timer, so a consumer stuck retrying still shows it."""

import asyncio
import contextlib
from typing import Any

from aiokafka import ConsumerRecord, TopicPartition
from krousar_common.kafka import ConsumerRunner, ConsumerSpec
from krousar_common.testing import wait_for
from prometheus_client import REGISTRY

TOPIC = "test.stuck.v1"
PARTITION = TopicPartition(TOPIC, 0)


class GrowingLog:
    """A consumer that hands out one batch, then nothing, while its partition keeps growing."""

    def __init__(self, committed: int | None) -> None:
        self.ends = [100]
        self._committed = committed
        self._delivered = False

    async def start(self) -> None: ...
    async def stop(self) -> None: ...

    async def getmany(self, **_: Any) -> dict[TopicPartition, list[ConsumerRecord]]:
        if self._delivered:
            await asyncio.sleep(0.01)
            return {}
        self._delivered = True
        record = ConsumerRecord(TOPIC, 0, 40, 0, 0, b"k", b"{}", None, 1, 2, [])
        return {PARTITION: [record]}

    def assignment(self) -> set[TopicPartition]:
        return {PARTITION}

    async def end_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        self.ends.append(self.ends[-1] + 10)
        return dict.fromkeys(partitions, self.ends[-1])

    async def committed(self, partition: TopicPartition) -> int | None:
        return self._committed

    async def position(self, partition: TopicPartition) -> int:
        return 41


class DatabaseDown:
    def acquire(self) -> Any:
        raise OSError("connection refused")


def lag(service: str) -> float | None:
    return REGISTRY.get_sample_value("krousar_consumer_lag_messages", {"service": service, "topic": TOPIC})


async def ignore(*_: Any) -> None: ...


def runner_of(service: str, consumer: GrowingLog) -> ConsumerRunner:
    """A runner of the test group whose database is down, reading ``consumer``."""
    runner = ConsumerRunner(
        ConsumerSpec(TOPIC, "test-group", ignore),
        pool=DatabaseDown(),  # type: ignore[arg-type]
        producer=None,  # type: ignore[arg-type]
        bootstrap="127.0.0.1:1",
        service=service,
        lag_report_seconds=0.01,
    )
    runner.consumer = consumer  # type: ignore[assignment]
    return runner


async def lag_while_stuck(service: str, consumer: GrowingLog) -> float:
    """Run a consumer whose database is down until its lag gauge has grown well past the start."""

    async def grown() -> float | None:
        value = lag(service)
        return value if value is not None and value > 200 else None

    runner = runner_of(service, consumer)
    task = asyncio.create_task(runner.run())
    try:
        return await wait_for(grown, timeout=5, interval=0.01, what="the lag growing")
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_lag_keeps_growing_while_a_batch_is_retried() -> None:
    consumer = GrowingLog(committed=30)
    reported = await lag_while_stuck("test-stuck-committed", consumer)
    assert reported in {end - 30 for end in consumer.ends}  # end of the log − the last commit


async def test_lag_before_any_commit_counts_from_the_position() -> None:
    consumer = GrowingLog(committed=None)
    reported = await lag_while_stuck("test-stuck-uncommitted", consumer)
    assert reported in {end - 41 for end in consumer.ends}


async def test_runners_of_one_group_in_a_process_report_the_sum_of_their_lags() -> None:
    consumers = [GrowingLog(committed=30), GrowingLog(committed=50)]
    runners = [runner_of("test-two-runners", consumer) for consumer in consumers]
    for runner in runners:
        await runner._report_lag()
    assert lag("test-two-runners") == (consumers[0].ends[-1] - 30) + (consumers[1].ends[-1] - 50)
