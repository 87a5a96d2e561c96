"""Event ids made in SQL (the common migration's uuid7()) are what the services' envelopes make:
version 7 with the RFC variant, their first 48 bits the time in milliseconds, so that a batch of
them sorts in the order it was made."""

import time
import uuid
from pathlib import Path

import pytest
from krousar_common.testing import migrated_pool
from uuid_utils.compat import uuid7

pytestmark = pytest.mark.integration
PSP_MIGRATIONS = Path(__file__).resolve().parents[2] / "services" / "psp_simulator" / "migrations"


def milliseconds(event_id: uuid.UUID) -> int:
    return event_id.int >> 80


async def test_ids_made_in_sql_are_time_ordered_uuid7() -> None:
    async with migrated_pool("psp_simulator", PSP_MIGRATIONS) as pool, pool.acquire() as conn:
        before = time.time_ns() // 1_000_000
        rows = await conn.fetch("SELECT uuid7() AS id FROM generate_series(1, 20000)")
        after = time.time_ns() // 1_000_000
    ids = [r["id"] for r in rows]
    assert len(set(ids)) == len(ids)
    assert {(i.version, i.variant) for i in ids} == {(7, uuid.RFC_4122)}
    assert all(before <= milliseconds(i) <= after for i in ids)
    assert [milliseconds(i) for i in ids] == sorted(milliseconds(i) for i in ids)
    assert milliseconds(uuid.UUID(str(uuid7()))) >= milliseconds(ids[-1])  # the envelopes' clock
