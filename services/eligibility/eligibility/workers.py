"""A full evaluation split over worker processes by ranges of household ids.

Deciding is Python, one core per process: a national run (700,000 households, every programme) is
cut into as many ranges of ids as there are workers, and each worker process decides its range
with its own database connection exactly as ``evaluation.evaluate_all`` decides the whole
register — batches of one transaction, each household row-locked while it is decided, changed
decisions written and published through the outbox. Ranges never overlap, so the workers never
wait for each other; the decider and the consumers keep running in the service process.
"""

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from uuid import UUID

import asyncpg
import uvloop
from krousar_common import db, worker_processes

from eligibility import evaluation, store


@dataclass(frozen=True)
class Share:
    """One worker's part of a run: the households after ``after``, up to ``until`` (None: the last)."""

    database_url: str
    codes: list[str] | None
    day: date
    publishing: evaluation.Publishing
    batch_size: int
    run_ids: list[UUID]
    after: UUID
    until: UUID | None


async def evaluate_in_workers(
    pool: asyncpg.Pool,
    database_url: str,
    codes: Sequence[str] | None,
    day: date,
    publishing: evaluation.Publishing,
    *,
    workers: int,
    batch_size: int,
    run_ids: list[UUID],
) -> evaluation.Outcome:
    """``evaluation.evaluate_all`` over ``workers`` processes; raises the first worker's error once
    every worker has stopped (so no range is still being decided when the run is marked FAILED)."""
    async with pool.acquire() as conn:
        bounds = await store.household_id_bounds(conn, workers)
    wanted = None if codes is None else list(codes)
    ranges = zip([evaluation.NOWHERE, *bounds], [*bounds, None], strict=True)
    shares = [Share(database_url, wanted, day, publishing, batch_size, run_ids, a, u) for a, u in ranges]
    loop = asyncio.get_running_loop()
    with worker_processes.pool(len(shares)) as executor:
        done = await asyncio.gather(
            *(loop.run_in_executor(executor, evaluate_share, share) for share in shares),
            return_exceptions=True,
        )
    total = evaluation.Outcome()
    for outcome in done:
        if isinstance(outcome, BaseException):
            raise outcome
        total.add(outcome)
    return total


def evaluate_share(share: Share) -> evaluation.Outcome:
    """In a worker process: decide the share's range (on uvloop: asyncpg reads rows faster)."""
    return uvloop.run(_evaluate_share(share))


async def _evaluate_share(share: Share) -> evaluation.Outcome:
    pool = await db.create_pool(share.database_url, min_size=1, max_size=1)
    try:
        outcome = await evaluation.evaluate_all(
            pool,
            share.codes,
            share.day,
            share.publishing,
            batch_size=share.batch_size,
            run_ids=share.run_ids,
            after=share.after,
            until=share.until,
        )
    finally:
        await pool.close()
    outcome.skipped = []  # queued again already, batch by batch
    return outcome
