"""Who was paid: payments.instructions.v1 joined with payments.status.v1 (for exclusions)."""

from collections.abc import Sequence
from uuid import UUID

import asyncpg
from krousar_common.events.payments import PaymentInstructed, PaymentStatusReported

from eligibility.store.households import Span, households_in

# --- who was paid ------------------------------------------------------------------------------------


async def insert_instructions(conn: asyncpg.Connection, instructions: Sequence[PaymentInstructed]) -> None:
    """Who each payment is for and what it paid, in one statement for a batch (a national run
    instructs 700,000 payments at once); a payment seen before is kept as it is."""
    await conn.execute(
        "INSERT INTO payment_instructions (payment_id, household_id, programme_code, period)"
        " SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[])"
        " ON CONFLICT (payment_id) DO NOTHING",
        [i.payment_id for i in instructions],
        [i.household_id for i in instructions],
        [i.programme_code for i in instructions],
        [i.period for i in instructions],
    )


async def upsert_statuses(conn: asyncpg.Connection, statuses: Sequence[PaymentStatusReported]) -> None:
    """The latest report of each payment wins (a payment can be FAILED, then PAID on a retry); of
    two reported at the same time, the later in the batch, as one by one."""
    latest: dict[UUID, PaymentStatusReported] = {}
    for status in statuses:
        kept = latest.get(status.payment_id)
        if kept is None or kept.reported_at <= status.reported_at:
            latest[status.payment_id] = status
    await conn.execute(
        "INSERT INTO payment_statuses (payment_id, household_id, status, reported_at)"
        " SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::timestamptz[])"
        " ON CONFLICT (payment_id) DO UPDATE SET status = EXCLUDED.status, reported_at = EXCLUDED.reported_at"
        " WHERE payment_statuses.reported_at <= EXCLUDED.reported_at",
        list(latest),
        [s.household_id for s in latest.values()],
        [str(s.status) for s in latest.values()],
        [s.reported_at for s in latest.values()],
    )


async def instruction_programmes(conn: asyncpg.Connection, payment_ids: Sequence[UUID]) -> dict[UUID, str]:
    """The programme of each payment among ``payment_ids`` whose instruction is known."""
    rows = await conn.fetch(
        "SELECT payment_id, programme_code FROM payment_instructions WHERE payment_id = ANY($1::uuid[])",
        list(payment_ids),
    )
    return {r["payment_id"]: r["programme_code"] for r in rows}


async def paid_among(conn: asyncpg.Connection, payment_ids: Sequence[UUID]) -> set[UUID]:
    """The payments among ``payment_ids`` last reported PAID."""
    rows = await conn.fetch(
        "SELECT payment_id FROM payment_statuses WHERE payment_id = ANY($1::uuid[]) AND status = 'PAID'",
        list(payment_ids),
    )
    return {r["payment_id"] for r in rows}


async def programmes_excluded_on(conn: asyncpg.Connection) -> set[str]:
    """The programmes whose paid households some programme excludes."""
    rows = await conn.fetch(
        "SELECT DISTINCT exclusion->>'programme_code' AS code FROM programmes,"
        " jsonb_array_elements(coalesce(definition->'target'->'exclusions', '[]')) AS exclusion"
    )
    return {r["code"] for r in rows}


async def paid_keys(
    conn: asyncpg.Connection, household_ids: Sequence[UUID], *, span: Span | None = None
) -> list[asyncpg.Record]:
    where, args = households_in("i.household_id", household_ids, span)
    return await conn.fetch(
        "SELECT i.household_id, i.programme_code, i.period FROM payment_instructions i"
        f" JOIN payment_statuses s USING (payment_id) WHERE {where} AND s.status = 'PAID'",
        *args,
    )
