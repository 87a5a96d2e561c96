"""Benchmark: a consumer's inbox claims with random (version 4) and time-ordered (version 7) ids.

    python -m bench.bench_inbox --events 2000000

Every consumed batch claims its event ids in the inbox (``krousar_common.inbox.claim_many``) in
the transaction of its effect: a national evaluation's decisions are claimed by payments. This
claims ``--events`` ids in batches of 5,000 into the inbox of a scratch database (the common
migrations), once with uuid4 ids, once with the uuid7 ids envelopes carry, twice each in turn;
the inbox is emptied and a CHECKPOINT taken before each run, so each starts alike.
"""

import argparse
import asyncio
import uuid
from collections.abc import Callable
from uuid import UUID

import asyncpg
from krousar_common import db, inbox
from krousar_common.testing import TestStack
from uuid_utils.compat import uuid7

from bench.common import Report, write_section

BATCH = 5000
KINDS: dict[str, Callable[[], UUID]] = {"uuid4 (random)": uuid.uuid4, "uuid7 (time-ordered)": uuid7}


async def run(events: int) -> Report:
    report = Report(
        f"Inbox claims of {events:,} events: random against time-ordered ids",
        f"python -m bench.bench_inbox --events {events}",
    )
    stack = TestStack()
    database = stack.database("inbox_bench")
    await db.migrate(stack.pg_url, database)  # the common migrations: outbox, inbox
    conn = await asyncpg.connect(f"{stack.pg_url}/{database}")
    try:
        for kind in [*KINDS, *KINDS]:
            await _claim(report, conn, kind, events)
    finally:
        await conn.close()
        await _drop(stack.pg_url, database)
    report.notes.append(
        "Each batch: one INSERT … SELECT unnest($ids) ON CONFLICT DO NOTHING RETURNING event_id into"
        " inbox (consumer, event_id) primary key, as every batch consumer claims; ids made in Python"
        " as the services make them (included in the time)."
    )
    return report


async def _claim(report: Report, conn: asyncpg.Connection, kind: str, events: int) -> None:
    await conn.execute("TRUNCATE inbox")
    await conn.execute("CHECKPOINT")
    wal_before = await conn.fetchval("SELECT pg_current_wal_lsn()")
    new_id = KINDS[kind]
    with report.stage(f"claim, {kind} ids, batches of {BATCH:,}", events, "events") as stage:
        for _ in range(0, events, BATCH):
            ids = [new_id() for _ in range(BATCH)]
            await inbox.claim_many(conn, consumer="payments.decisions", event_ids=ids)
        wal = await conn.fetchval("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), $1)", wal_before)
        index = await conn.fetchval("SELECT pg_relation_size('inbox_pkey')")
        stage.note = f"WAL {float(wal) / 2**20:,.0f} MiB, primary key {index / 2**20:,.0f} MiB"


async def _drop(server_url: str, database: str) -> None:
    conn = await asyncpg.connect(f"{server_url}/postgres")
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    finally:
        await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=2_000_000)
    args = parser.parse_args()
    write_section(asyncio.run(run(args.events)))


if __name__ == "__main__":
    main()
