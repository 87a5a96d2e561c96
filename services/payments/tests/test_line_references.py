"""What the foreign keys of payment lines said, now checked once a statement (migration 0006): a
line names its run and an arithmetic of that run, and runs are never deleted. Against a real
PostgreSQL database of its own, migrated like the service's."""

import shutil
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from krousar_common import db
from krousar_common.testing import TestStack
from payments import store

MIGRATIONS = Path(__file__).resolve().parents[1] / "migrations"
pytestmark = pytest.mark.integration
LINE_BEFORE_0006 = (  # a line as migrations 0001-0005 kept it, terms and explanation in the row
    "INSERT INTO payment_lines (payment_id, run_id, programme_code, period, household_id, component,"
    " attempt, amount_riel, terms, explanation, province_code, commune_code, village_code,"
    " location_category, poverty_level, payee_name, channel, status) VALUES ($1, $2, 'COVID19_CT',"
    " '2020-07', $3, 'MONTHLY', 1, 300000, $4, $5, '12', '120101', '12010101', 'PHNOM_PENH', 'POOR_1',"
    " 'payee', 'WING', 'CALCULATED')"
)


@pytest.fixture
async def conn() -> AsyncIterator[asyncpg.Connection]:
    stack = TestStack()
    await stack.check_reachable()
    await db.migrate(stack.pg_url, stack.database("payments"), MIGRATIONS)
    conn = await asyncpg.connect(f"{stack.pg_url}/{stack.database('payments')}")
    try:
        yield conn
    finally:
        await conn.close()
        await stack.drop()


async def test_lines_written_before_the_migration_keep_their_arithmetic(tmp_path: Path) -> None:
    before = tmp_path / "payments" / "migrations"  # named as the service's: the same migration names
    before.mkdir(parents=True)
    for path in sorted(MIGRATIONS.glob("*.sql"))[:5]:
        shutil.copy(path, before)
    stack = TestStack()
    await stack.check_reachable()
    await db.migrate(stack.pg_url, stack.database("payments"), before)
    conn = await asyncpg.connect(f"{stack.pg_url}/{stack.database('payments')}")
    try:
        run_id = await draft_run(conn)
        for household, terms in enumerate(['[{"label": "base"}]', '[{"label": "base"}]', "[]"]):
            await conn.execute(
                LINE_BEFORE_0006,
                uuid.uuid4(),
                run_id,
                uuid.UUID(int=household + 1),
                terms,
                f"{terms} explained",
            )

        await db.migrate(stack.pg_url, stack.database("payments"), MIGRATIONS)

        rows = await conn.fetch(
            "SELECT household_id, terms, explanation FROM line_states ORDER BY household_id"
        )
        assert [(r["terms"], r["explanation"]) for r in rows] == [
            ('[{"label": "base"}]', '[{"label": "base"}] explained'),
            ('[{"label": "base"}]', '[{"label": "base"}] explained'),
            ("[]", "[] explained"),
        ]
        assert await conn.fetchval("SELECT count(*) FROM run_arithmetics") == 2
    finally:
        await conn.close()
        await stack.drop()


async def draft_run(conn: asyncpg.Connection, period: str = "2020-07") -> uuid.UUID:
    run_id = uuid.uuid4()
    await conn.execute(
        "INSERT INTO runs (run_id, programme_code, programme_version, period, rules_day, available_from,"
        " claim_until, state, created_by, correlation_id)"
        " VALUES ($1, 'COVID19_CT', 1, $2, '2020-07-01', '2020-07-25', '2020-08-23', 'DRAFT',"
        " 'op', 't')",
        run_id,
        period,
    )
    return run_id


def line(run_id: uuid.UUID, arithmetic_id: uuid.UUID) -> tuple[object, ...]:
    return (
        uuid.uuid4(), run_id, "COVID19_CT", "2020-07", uuid.uuid4(), "MONTHLY", 1, 300_000, arithmetic_id,
        "12", "120101", "12010101", "PHNOM_PENH", "POOR_1", "payee", "WING", None, "CALCULATED",
    )  # fmt: skip


async def test_lines_naming_their_run_and_its_arithmetic_are_written(conn: asyncpg.Connection) -> None:
    run_id, arithmetic_id = await draft_run(conn), uuid.uuid4()
    await store.add_arithmetics(conn, [(run_id, arithmetic_id, '[{"label": "base"}]', "300,000 = 300,000")])

    await store.copy_lines(conn, [line(run_id, arithmetic_id) for _ in range(3)])

    rows = await conn.fetch("SELECT terms, explanation FROM line_states WHERE run_id = $1", run_id)
    assert [(r["terms"], r["explanation"]) for r in rows] == [
        ('[{"label": "base"}]', "300,000 = 300,000")
    ] * 3


@pytest.mark.parametrize("wrong", ["arithmetic", "run"])
async def test_a_copy_with_one_line_naming_nothing_writes_no_line(
    conn: asyncpg.Connection, wrong: str
) -> None:
    run_id, arithmetic_id = await draft_run(conn), uuid.uuid4()
    await store.add_arithmetics(conn, [(run_id, arithmetic_id, "[]", "300,000 = 300,000")])
    other_run = await draft_run(conn, "2020-08")  # an arithmetic of one run is not another run's
    bad = line(other_run, arithmetic_id) if wrong == "run" else line(run_id, uuid.uuid4())

    with pytest.raises(asyncpg.ForeignKeyViolationError, match="names no arithmetic of its run"):
        await store.copy_lines(conn, [line(run_id, arithmetic_id), bad])

    assert await conn.fetchval("SELECT count(*) FROM payment_lines") == 0


async def test_runs_are_never_deleted(conn: asyncpg.Connection) -> None:
    run_id = await draft_run(conn)

    with pytest.raises(asyncpg.RestrictViolationError, match="never deleted"):
        await conn.execute("DELETE FROM runs WHERE run_id = $1", run_id)

    assert await conn.fetchval("SELECT count(*) FROM runs") == 1
