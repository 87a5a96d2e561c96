"""Columns holding documents that are read whole and never searched carry no planner statistics
(registration 0003, payments 0007 and 0008): ANALYZE of the assessments' jsonb took a second of CPU from
the registration API as the registry grew."""

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


@pytest.mark.parametrize("service", sorted(DOCUMENTS))
async def test_analyze_skips_the_documents(service: str) -> None:
    stack = TestStack()
    await stack.check_reachable()
    await db.migrate(stack.pg_url, stack.database(service), SERVICES / service / "migrations")
    conn = await asyncpg.connect(f"{stack.pg_url}/{stack.database(service)}")
    try:
        rows = await conn.fetch(
            "SELECT c.relname, a.attname FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = 'public' AND c.relkind = 'r'"
            " AND a.attnum > 0 AND NOT a.attisdropped AND a.attstattarget = 0"
        )
    finally:
        await conn.close()
        await stack.drop()
    assert {(r["relname"], r["attname"]) for r in rows} == DOCUMENTS[service]
