"""Inbox: remember which events a consumer has applied, in the same transaction as the effect."""

from collections.abc import Sequence
from uuid import UUID

import asyncpg


async def claim(conn: asyncpg.Connection, *, consumer: str, event_id: UUID) -> bool:
    """True the first time ``consumer`` sees ``event_id``; False for a redelivery (skip it)."""
    inserted = await conn.fetchval(
        "INSERT INTO inbox (consumer, event_id) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING true",
        consumer,
        event_id,
    )
    return bool(inserted)


async def claim_many(conn: asyncpg.Connection, *, consumer: str, event_ids: Sequence[UUID]) -> set[UUID]:
    """The ids among ``event_ids`` that ``consumer`` sees for the first time."""
    rows = await conn.fetch(
        "INSERT INTO inbox (consumer, event_id) SELECT $1, unnest($2::uuid[])"
        " ON CONFLICT DO NOTHING RETURNING event_id",
        consumer,
        list(event_ids),
    )
    return {row["event_id"] for row in rows}
