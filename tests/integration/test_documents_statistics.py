"""How the services' migrations store documents. Columns holding documents that are read whole and
never searched carry no planner statistics (registration 0003, payments 0007 and 0008): ANALYZE of
the assessments' jsonb took a second of CPU from the registration API as the registry grew. Columns
whose values are mostly over the 2 kB at which PostgreSQL compresses use lz4, not pglz (common
0003, eligibility 0005, payments 0009)."""

from pathlib import Path

import asyncpg
import pytest
from krousar_common import db
from krousar_common.testing import TestStack

pytestmark = pytest.mark.integration
SERVICES = Path(__file__).resolve().parents[2] / "services"
DOCUMENTS = {
    "registration": {
        ("assessments", "items"),
        ("assessments", "answers"),
        ("audit_log", "details"),
        ("imports", "errors"),
    },
    "payments": {("decisions", "enrolment"), ("decided_households", "snapshot")},
}
LZ4 = {
    "registration": {("outbox", "payload")},
    "eligibility": {("outbox", "payload"), ("households", "snapshot")},
    "payments": {("outbox", "payload"), ("decided_households", "snapshot")},
}


async def columns_where(service: str, condition: str) -> set[tuple[str, str]]:
    """(table, column) of the service's migrated tables whose pg_attribute row ``a`` meets ``condition``."""
    stack = TestStack()
    await stack.check_reachable()
    await db.migrate(stack.pg_url, stack.database(service), SERVICES / service / "migrations")
    conn = await asyncpg.connect(f"{stack.pg_url}/{stack.database(service)}")
    try:
        rows = await conn.fetch(
            "SELECT c.relname, a.attname FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            f" WHERE n.nspname = 'public' AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped"
            f" AND {condition}"
        )
    finally:
        await conn.close()
        await stack.drop()
    return {(r["relname"], r["attname"]) for r in rows}


@pytest.mark.parametrize("service", sorted(DOCUMENTS))
async def test_analyze_skips_the_documents(service: str) -> None:
    assert await columns_where(service, "a.attstattarget = 0") == DOCUMENTS[service]


@pytest.mark.parametrize("service", sorted(LZ4))
async def test_large_values_are_compressed_with_lz4(service: str) -> None:
    assert await columns_where(service, "a.attcompression = 'l'") == LZ4[service]
