"""What the registry published: every message of ``registry.households.v1``, decoded by its contract.

One consumer (no group, from the earliest offset) runs for a test module and keeps every message,
so a test waits for the events of its own households without re-reading the topic each time.
"""

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer
from krousar_common import topics
from krousar_common.events import Envelope, InvalidEvent, decode
from krousar_common.testing import TestStack, wait_for
from pydantic import BaseModel


@dataclass(frozen=True)
class Message:
    key: str
    raw: bytes
    envelope: Envelope | None
    event: BaseModel | None
    error: str | None  # why ``decode`` refused the message, when it did

    @property
    def type(self) -> str | None:
        return self.envelope.type if self.envelope else None


class HouseholdEvents:
    def __init__(self, stack: TestStack) -> None:
        self.topic = stack.topic(topics.HOUSEHOLDS.name)
        self.messages: list[Message] = []
        self._consumer = AIOKafkaConsumer(
            self.topic,
            bootstrap_servers=stack.kafka_bootstrap,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            group_id=None,
        )
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> "HouseholdEvents":
        await self._consumer.start()
        self._task = asyncio.create_task(self._collect())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._consumer.stop()

    async def _collect(self) -> None:
        while True:
            batch = await self._consumer.getmany(timeout_ms=200)
            for records in batch.values():
                self.messages += [_message(r.key, r.value) for r in records]

    def of(self, household_id: Any, event_type: str | None = None) -> list[Message]:
        key = str(household_id)
        return [m for m in self.messages if m.key == key and event_type in (None, m.type)]

    async def wait(
        self, household_id: Any, event_type: str, *, count: int = 1, timeout: float = 20
    ) -> list[Message]:
        """The first ``count`` events of ``event_type`` (e.g. "krousar.CardExpired") of the household."""

        async def arrived() -> list[Message] | None:
            found = self.of(household_id, event_type)
            return found[:count] if len(found) >= count else None

        return await wait_for(arrived, timeout=timeout, what=f"{count} × {event_type} of {household_id}")

    def undecodable(self) -> list[Message]:
        return [m for m in self.messages if m.error is not None]


def _message(key: bytes | None, raw: bytes) -> Message:
    text_key = key.decode() if key is not None else ""
    try:
        envelope, event = decode(raw)
    except InvalidEvent as exc:
        return Message(text_key, raw, None, None, str(exc))
    return Message(text_key, raw, envelope, event, None)
