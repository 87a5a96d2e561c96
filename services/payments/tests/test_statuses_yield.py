"""Statuses yield to instructions: a batch of PSP statuses waits while a run is being instructed or
its instructions published, never longer than ``statuses_yield_seconds``. Against a real PostgreSQL
database of its own, migrated like the service's."""

import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import asyncpg
import pytest
from krousar_common.testing import migrated_pool
from payments import instruction
from payments.config import Settings

MIGRATIONS = Path(__file__).resolve().parents[1] / "migrations"
pytestmark = pytest.mark.integration
MOST = 0.6  # statuses_yield_seconds of these tests


@pytest.fixture
async def runtime() -> AsyncIterator[Any]:
    async with migrated_pool("payments", MIGRATIONS, max_size=2) as pool:
        yield SimpleNamespace(pool=pool, settings=Settings(statuses_yield_seconds=MOST))


async def run_in(pool: asyncpg.Pool, state: str, *, instructed: bool, published: bool) -> None:
    last = uuid.uuid4()
    await pool.execute(
        "INSERT INTO runs (run_id, programme_code, programme_version, period, rules_day, available_from,"
        " claim_until, state, created_by, correlation_id, instructed_through, published_through)"
        " VALUES ($1, 'COVID19_CT', 1, '2020-07', '2020-07-01', '2020-07-25', '2020-08-23', $2, 'op', 't',"
        " $3, $4)",
        uuid.uuid4(),
        state,
        last if instructed else None,
        last if published else None,
    )


async def waited(runtime: Any) -> float:
    started = time.monotonic()
    await instruction.yield_to_instructions(runtime)
    return time.monotonic() - started


async def test_statuses_go_on_at_once_when_every_instruction_is_published(runtime: Any) -> None:
    await run_in(runtime.pool, "CALCULATED", instructed=False, published=False)
    await run_in(runtime.pool, "INSTRUCTED", instructed=True, published=True)

    assert await waited(runtime) < MOST / 2


@pytest.mark.parametrize(
    ("state", "published"), [("APPROVED", False), ("INSTRUCTED", False)], ids=["instructing", "publishing"]
)
async def test_statuses_wait_while_a_run_is_instructed_or_published_but_not_for_ever(
    runtime: Any, state: str, published: bool
) -> None:
    await run_in(runtime.pool, state, instructed=True, published=published)

    assert MOST <= await waited(runtime) < MOST + 1.0
