"""What eligibility consumes: the registry's household events into its projection."""

import asyncpg
from krousar_common import topics
from krousar_common.events import Envelope
from krousar_common.events.households import HouseholdEvent
from krousar_common.kafka import ConsumerSpec
from krousar_common.settings import ServiceSettings
from pydantic import BaseModel

from eligibility import store


async def on_household_event(conn: asyncpg.Connection, envelope: Envelope, event: BaseModel) -> None:
    if isinstance(event, HouseholdEvent):
        await store.upsert_household(conn, event.household)


def consumers(settings: ServiceSettings) -> list[ConsumerSpec]:
    return [
        ConsumerSpec(
            topic=settings.topic(topics.HOUSEHOLDS.name),
            group=settings.group("eligibility.households"),
            handler=on_household_event,
        )
    ]
