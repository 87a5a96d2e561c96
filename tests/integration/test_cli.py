"""``krousar migrate SERVICE``: every migration of the service (the common ones first) on an empty
database, in order, once; run again, it applies nothing and changes nothing."""

import asyncio
import importlib
import os
import subprocess
import sys

import asyncpg
import pytest
from krousar_common import db, ports
from krousar_common.testing import ROOT, TestStack


def krousar(*args: str, stack: TestStack) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "krousar_common.cli", *args],
        env={**os.environ, "KROUSAR_PG_URL": stack.pg_url},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


async def schema(conn: asyncpg.Connection) -> list[tuple[str, str, str]]:
    """(table, column, type) of every column of the public schema: what a migration changes."""
    rows = await conn.fetch(
        "SELECT table_name, column_name, data_type FROM information_schema.columns"
        " WHERE table_schema = 'public' ORDER BY table_name, column_name"
    )
    return [tuple(r) for r in rows]


async def migrations_applied(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    return await conn.fetch("SELECT name, applied_at FROM schema_migrations ORDER BY applied_at")


@pytest.mark.parametrize("service", ports.SERVICE_PORTS)
async def test_migrate_applies_every_migration_once(stack: TestStack, service: str) -> None:
    database = f"{service}_cli_t{stack.run_id}"  # empty: the session drops it with the rest
    folder = importlib.import_module(f"{service}.app").DEFINITION.migrations
    expected = [name for name, _ in db.migration_files(db.COMMON_MIGRATIONS, folder)]

    first = await asyncio.to_thread(krousar, "migrate", service, "--database", database, stack=stack)
    conn = await asyncpg.connect(f"{stack.pg_url}/{database}")
    try:
        applied = await migrations_applied(conn)
        tables = await schema(conn)
        again = await asyncio.to_thread(krousar, "migrate", service, "--database", database, stack=stack)

        assert f"applied {len(expected)} migration(s) {expected}" in first
        assert [r["name"] for r in applied] == expected
        assert {"outbox", "inbox"} <= {table for table, _, _ in tables}
        assert "applied 0 migration(s)" in again
        assert await migrations_applied(conn) == applied
        assert await schema(conn) == tables
    finally:
        await conn.close()
