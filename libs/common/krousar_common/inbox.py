"""Inbox: remember which events a consumer has applied, in the same transaction as the effect."""

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
