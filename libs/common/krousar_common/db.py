"""PostgreSQL: the asyncpg pool, database creation and the plain-SQL migration runner.

Migrations are ``NNNN_name.sql`` files applied in order, each in its own transaction, once.
Every service applies the common ones (outbox, inbox) and then its own folder.
"""

import io
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import structlog

log = structlog.get_logger("krousar.db")
COMMON_MIGRATIONS = Path(str(resources.files("krousar_common") / "migrations"))
# The largest PostgreSQL int and bigint: an API integer stored in one is bounded by it, or a
# larger value is a 500 where asyncpg (or orjson, writing jsonb) refuses it instead of a 422.
INT_MAX = 2**31 - 1
BIGINT_MAX = 2**63 - 1
# Any constant works: it only serialises migration runs of concurrent processes on one database.
MIGRATION_LOCK_ID = 7_245_001


async def _init_connection(conn: asyncpg.Connection) -> None:
    # Binary codecs: they also serve COPY, which has no text path for json in asyncpg.
    # jsonb's binary form is a version byte (1) followed by the JSON text.
    await conn.set_type_codec(
        "jsonb",
        schema="pg_catalog",
        format="binary",
        encoder=lambda v: b"\x01" + orjson.dumps(v),
        decoder=lambda b: orjson.loads(b[1:]),
    )
    await conn.set_type_codec(
        "json", schema="pg_catalog", format="binary", encoder=orjson.dumps, decoder=orjson.loads
    )


async def create_pool(dsn: str, *, min_size: int = 2, max_size: int = 10) -> asyncpg.Pool:
    return await asyncpg.create_pool(dsn, min_size=min_size, max_size=max_size, init=_init_connection)


async def ensure_database(server_url: str, name: str) -> None:
    """Create database ``name`` on the server if it does not exist yet."""
    conn = await asyncpg.connect(f"{server_url}/postgres")
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            try:
                await conn.execute(f'CREATE DATABASE "{name}"')
            except asyncpg.DuplicateDatabaseError:
                pass  # created by a concurrent process between our check and our create
    finally:
        await conn.close()


def migration_files(*folders: Path) -> list[tuple[str, Path]]:
    """(name recorded in schema_migrations, path) in application order: folder by folder."""
    files = []
    for folder in folders:
        files += [(f"{folder.parent.name}/{p.name}", p) for p in sorted(folder.glob("*.sql"))]
    return files


async def apply_migrations(conn: asyncpg.Connection, *folders: Path) -> list[str]:
    """Apply every migration not applied yet; returns the names applied now."""
    await conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
    )
    applied_now = []
    await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_ID)
    try:
        done = {r["name"] for r in await conn.fetch("SELECT name FROM schema_migrations")}
        for name, path in migration_files(COMMON_MIGRATIONS, *folders):
            if name in done:
                continue
            async with conn.transaction():
                await conn.execute(path.read_text())
                await conn.execute("INSERT INTO schema_migrations (name) VALUES ($1)", name)
            log.info("db.migration_applied", migration=name)
            applied_now.append(name)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK_ID)
    return applied_now


async def migrate(server_url: str, database: str, *folders: Path) -> list[str]:
    await ensure_database(server_url, database)
    conn = await asyncpg.connect(f"{server_url}/{database}")
    try:
        return await apply_migrations(conn, *folders)
    finally:
        await conn.close()


async def copy_to_staging(
    conn: asyncpg.Connection, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]] | bytes
) -> str:
    """COPY ``rows`` (or rows already in binary COPY format: ``copy_binary``) into ``<table>_in``,
    a temporary table shaped like ``table`` and emptied when the transaction ends, and return its
    name: one upsert from it (INSERT … SELECT … ON CONFLICT) writes a batch for a fraction of a
    statement per row."""
    staging = f"{table}_in"
    await conn.execute(
        f"CREATE TEMP TABLE IF NOT EXISTS {staging} (LIKE {table} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
    )
    if isinstance(rows, bytes):
        await conn.copy_to_table(staging, source=io.BytesIO(rows), columns=list(columns), format="binary")
    else:
        await conn.copy_records_to_table(staging, records=rows, columns=list(columns))
    return staging
