"""A PSP silent past the claim window: its lines become UNCLAIMED and the run reconciles. And a
large run's lines by status: from the tallies while every line is in one state, counted
otherwise, the same either way.

The rule is pure (``domain.claim_window_closes``); the job runs against a real PostgreSQL database
of its own (migrated like the service's), with runs and lines written as the service writes them.
"""

import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import asyncpg
import pytest
from krousar_common.events.payments import PaymentStatus, PaymentStatusReported
from krousar_common.testing import migrated_pool
from payments import api, domain, jobs, store
from payments.config import Settings

MIGRATIONS = Path(__file__).resolve().parents[1] / "migrations"
JULY = (date(2020, 7, 25), date(2020, 8, 23))  # COVID19_CT 2020-07: available from, claim until
GRACE = timedelta(hours=72)


def test_the_window_closes_after_its_last_day_in_cambodia_and_the_grace() -> None:
    instructed = datetime(2020, 7, 20, 3, 0, tzinfo=UTC)  # before the money is available

    closes = domain.claim_window_closes(*JULY, instructed, GRACE)

    # 24 August 00:00 in Phnom Penh is 23 August 17:00 UTC.
    assert closes == datetime(2020, 8, 23, 17, 0, tzinfo=UTC) + GRACE


def test_a_run_instructed_late_gives_its_payees_the_whole_window() -> None:
    instructed = datetime(2023, 3, 1, 9, 0, tzinfo=UTC)  # two and a half years after the window

    closes = domain.claim_window_closes(*JULY, instructed, GRACE)

    assert closes == instructed + timedelta(days=30) + GRACE


# --- the job, on a database ------------------------------------------------------------------------


@pytest.fixture
async def pool() -> AsyncIterator[asyncpg.Pool]:
    async with migrated_pool("payments", MIGRATIONS, max_size=2) as pool:
        yield pool


def runtime_of(pool: asyncpg.Pool) -> Any:
    """What the jobs use of a Runtime: the pool, a transaction and the settings."""

    @contextlib.asynccontextmanager
    async def transaction() -> AsyncIterator[asyncpg.Connection]:
        async with pool.acquire() as conn, conn.transaction():
            yield conn

    return SimpleNamespace(pool=pool, transaction=transaction, settings=Settings())


async def instructed_run(
    conn: asyncpg.Connection, *, instructed_at: datetime, lines: int, households: int | None = None
) -> uuid.UUID:
    """An INSTRUCTED COVID19_CT 2020-07 run whose lines were all instructed, none reported yet:
    one a household, or ``lines`` shared by that many households (a component each)."""
    run_id, household_ids = uuid.uuid4(), [uuid.uuid4() for _ in range(households or lines)]
    await conn.execute(
        "INSERT INTO runs (run_id, programme_code, programme_version, period, rules_day, available_from,"
        " claim_until, state, lines, households, created_by, correlation_id, instructed_at)"
        " VALUES ($1, 'COVID19_CT', 1, '2020-07', '2020-07-01', $2, $3, 'INSTRUCTED', $4, $5, 'op', 'test',"
        " $6)",
        run_id,
        *JULY,
        lines,
        len(household_ids),
        instructed_at,
    )
    arithmetic_id = uuid.uuid4()
    await store.add_arithmetics(conn, [(run_id, arithmetic_id, "[]", "300,000 = 300,000")])
    for i in range(lines):
        await conn.execute(
            "INSERT INTO payment_lines (payment_id, run_id, programme_code, period, household_id, component,"
            " attempt, amount_riel, arithmetic_id, province_code, commune_code, village_code,"
            " location_category, poverty_level, payee_name, channel, status)"
            " VALUES ($1, $2, 'COVID19_CT', '2020-07', $3, $4, 1, 300000, $5,"
            " '12', '120101', '12010101', 'PHNOM_PENH', 'POOR_1', 'payee', 'WING', 'CALCULATED')",
            uuid.uuid4(),
            run_id,
            household_ids[i % len(household_ids)],
            ("MONTHLY", "HIV", "ELDERLY")[i // len(household_ids)],
            arithmetic_id,
        )
    await store.add_tallies(conn, run_id, "CALCULATED", {"12": (lines, 300_000 * lines)})
    instructed = await store.instruct_next(conn, run_id, limit=lines)
    assert instructed == lines
    return run_id


async def report(conn: asyncpg.Connection, run_id: uuid.UUID, status: PaymentStatus) -> uuid.UUID:
    """The PSP's word on a line of the run it has not reported on, applied as the statuses consumer
    applies it."""
    line = await conn.fetchrow(
        "SELECT payment_id, household_id FROM line_states WHERE run_id = $1 AND state = 'INSTRUCTED' LIMIT 1",
        run_id,
    )
    event = PaymentStatusReported(
        payment_id=line["payment_id"],
        run_id=run_id,
        household_id=line["household_id"],
        status=status,
        reported_at=datetime.now(UTC),
    )
    assert await store.apply_statuses(conn, [event]) == {line["payment_id"]}
    return line["payment_id"]


async def tallies(conn: asyncpg.Connection, run_id: uuid.UUID) -> dict[str, int]:
    rows = await conn.fetch(
        "SELECT state, sum(lines) AS n FROM line_tallies WHERE run_id = $1"
        " GROUP BY state HAVING sum(lines) <> 0",
        run_id,
    )
    return {r["state"]: r["n"] for r in rows}


async def states(conn: asyncpg.Connection, run_id: uuid.UUID) -> tuple[str, dict[str, int]]:
    run_state = await conn.fetchval("SELECT state FROM runs WHERE run_id = $1", run_id)
    rows = await conn.fetch(
        "SELECT state, count(*) AS n FROM line_states WHERE run_id = $1 GROUP BY state", run_id
    )
    return run_state, {r["state"]: r["n"] for r in rows}


@pytest.mark.integration
async def test_lines_a_silent_psp_never_reported_are_unclaimed_and_the_run_reconciles(
    pool: asyncpg.Pool,
) -> None:
    runtime = runtime_of(pool)
    async with pool.acquire() as conn:
        closed = await instructed_run(conn, instructed_at=datetime(2020, 7, 20, 3, tzinfo=UTC), lines=3)
        paid = await report(conn, closed, PaymentStatus.PAID)
        # Back-dated: instructed today for July 2020, so its payees still have their 30 days.
        still_open = await instructed_run(conn, instructed_at=datetime.now(UTC), lines=2)

    await jobs.close_claim_windows(runtime)
    await jobs.reconcile_runs(runtime)

    async with pool.acquire() as conn:
        assert await states(conn, closed) == ("RECONCILED", {"PAID": 1, "UNCLAIMED": 2})
        assert await states(conn, still_open) == ("INSTRUCTED", {"INSTRUCTED": 2})
        reasons = await conn.fetch(
            "SELECT status_reason FROM line_states WHERE run_id = $1 AND payment_id <> $2", closed, paid
        )
        assert {r["status_reason"] for r in reasons} == {"CLAIM_WINDOW_CLOSED"}
        for run_id in (closed, still_open):  # the tallies the gauges read say what the lines say
            assert await tallies(conn, run_id) == (await states(conn, run_id))[1]
        published = await conn.fetchval(
            "SELECT count(*) FROM outbox WHERE event_type = 'krousar.RunStateChanged' AND key = $1",
            str(closed),
        )
        assert published == 1  # the move to RECONCILED, through the outbox


# --- a large run's lines by status, as GET /v1/runs/{id} shows them --------------------------------


async def shown(conn: asyncpg.Connection, run_id: Any) -> list[dict[str, Any]]:
    api._counted.clear()
    run = await store.get_run(conn, run_id)
    return sorted((dict(c) for c in await api.status_counts(conn, run)), key=lambda c: c["status"])


async def counted(conn: asyncpg.Connection, run_id: Any) -> list[dict[str, Any]]:
    return sorted((dict(c) for c in await store.status_counts(conn, run_id)), key=lambda c: c["status"])


@pytest.mark.integration
@pytest.mark.parametrize("households", [6, 3], ids=["a line a household", "two lines a household"])
async def test_counts_are_the_lines_counted_in_every_state_of_a_run(
    pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch, households: int
) -> None:
    monkeypatch.setattr(api, "CACHED_FROM_LINES", 0)  # a large run, whatever its size
    async with pool.acquire() as conn:
        run_id = await instructed_run(conn, instructed_at=datetime.now(UTC), lines=6, households=households)
        all_instructed = await shown(conn, run_id)
        for _ in range(4):
            await report(conn, run_id, PaymentStatus.PAID)
        some_paid = await shown(conn, run_id)
        assert some_paid == await counted(conn, run_id)
        for _ in range(2):
            await report(conn, run_id, PaymentStatus.PAID)
        all_paid = await shown(conn, run_id)

        assert all_paid == await counted(conn, run_id)
    everyone = {"lines": 6, "households": households, "amount_riel": 1_800_000}
    assert all_instructed == [{"status": "INSTRUCTED", **everyone}]
    assert [c["status"] for c in some_paid] == ["INSTRUCTED", "PAID"]
    assert all_paid == [{"status": "PAID", **everyone}]
