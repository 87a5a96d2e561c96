"""A run calculated in worker processes writes what the service process would write itself."""

import uuid
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path

import asyncpg
import orjson
import pytest
from krousar_common import db
from krousar_common.benefits import Calculator
from krousar_common.programmes import load_programme
from krousar_common.testing import TestStack
from payments import assessment, domain, store, workers

from bench.bench_payments import PROGRAMME, decision_rows

MIGRATIONS = Path(__file__).resolve().parents[1] / "migrations"
COVID = load_programme(PROGRAMME)


def test_a_history_is_cut_as_the_pages_are() -> None:
    ids = sorted(uuid.UUID(int=i) for i in (1, 5, 9, 12))
    history = domain.History(
        live={(ids[0], "MONTHLY"): "PAID", (ids[2], "MONTHLY"): "CALCULATED"},
        attempts={(ids[0], "MONTHLY"): 1, (ids[2], "MONTHLY"): 2, (ids[3], "MONTHLY"): 1},
        excluded={ids[1]: "FLOOD_2022"},
    )

    first, second, last = history.split([uuid.UUID(int=5), uuid.UUID(int=9)])

    assert first.live == {(ids[0], "MONTHLY"): "PAID"} and first.excluded == {ids[1]: "FLOOD_2022"}
    assert second.attempts == {(ids[2], "MONTHLY"): 2} and not second.excluded
    assert last.attempts == {(ids[3], "MONTHLY"): 1} and not last.live


@pytest.fixture
async def database() -> AsyncIterator[tuple[str, asyncpg.Connection]]:
    """A payments database holding 503 of the bench's synthetic decisions, and a connection to it."""
    stack = TestStack()
    await stack.check_reachable()
    url = f"{stack.pg_url}/{stack.database('payments')}"
    await db.migrate(stack.pg_url, stack.database("payments"), MIGRATIONS)
    loader = await asyncpg.connect(url)  # plain codecs: the bench's rows carry their JSON as text
    try:
        await loader.execute(
            "INSERT INTO programme_versions (code, version, status, definition) VALUES ($1, 1, 'ACTIVE', $2)",
            "COVID19_CT",
            COVID.model_dump_json(),
        )
        records = list(decision_rows(503, seed=7))
        await loader.copy_records_to_table("decisions", records=records, columns=store.DECISION_COLUMNS)
    finally:
        await loader.close()
    pool = await db.create_pool(url, min_size=1, max_size=1)
    try:
        async with pool.acquire() as conn:
            yield url, conn
    finally:
        await pool.close()
        await stack.drop()


@pytest.mark.integration
async def test_pages_calculated_in_worker_processes_are_the_lines_of_the_service_process(
    database: tuple[str, asyncpg.Connection],
) -> None:
    url, conn = database
    run = assessment.RunSpec(uuid.uuid4(), "COVID19_CT", "2023-03", date(2023, 3, 1))
    await conn.execute(
        "INSERT INTO runs (run_id, programme_code, programme_version, period, rules_day, available_from,"
        " claim_until, state, created_by, correlation_id)"
        " VALUES ($1, 'COVID19_CT', 1, '2023-03', '2023-03-01', '2023-03-25', '2023-04-23', 'DRAFT',"
        " 'op', 't')",
        run.run_id,
    )
    rows = await store.fetch_decision_page(conn, "COVID19_CT", after=None, until=None)
    expected_totals = domain.Totals()
    expected = assessment.assess_batch(Calculator(COVID), run, domain.History(), rows, expected_totals)
    pages: list[int] = []

    async def on_page(households: int) -> None:
        pages.append(households)

    async with conn.transaction():
        totals = await workers.calculate_pages(
            conn,
            conn,
            run,
            COVID,
            domain.History(),
            database_url=url,
            workers=2,
            page_size=50,
            on_page=on_page,
        )
        written = await conn.fetch(
            f"SELECT {', '.join(store.LINE_COLUMNS)} FROM payment_lines WHERE run_id = $1", run.run_id
        )
        arithmetics = await conn.fetch(
            f"SELECT {', '.join(store.ARITHMETIC_COLUMNS)} FROM run_arithmetics WHERE run_id = $1", run.run_id
        )

    assert sorted(pages) == sorted([50] * 10 + [3])
    assert len(expected.lines) == 503
    assert sorted(tuple(r) for r in written) == sorted(expected.lines)
    assert {r["arithmetic_id"]: (r["terms"], r["explanation"]) for r in arithmetics} == {
        a.arithmetic_id: (orjson.loads(a.terms), a.explanation) for a in expected.arithmetics.values()
    }
    assert totals.rows() == expected_totals.rows() and totals.lines == expected_totals.lines == 503
