"""Who eligibility knows was paid (events.on_payment_instructions / on_payment_statuses, applied a
batch at a time) on a real PostgreSQL: the latest status of each payment wins, in a batch as one by
one, and only a household paid by a programme that another excludes on is decided again."""

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from uuid import UUID, uuid4

import asyncpg
import pytest
from eligibility import events
from krousar_common.batch_consumer import Event
from krousar_common.events import Envelope
from krousar_common.events.payments import PaymentInstructed, PaymentStatusReported
from krousar_common.testing import migrated_pool

pytestmark = pytest.mark.integration
MIGRATIONS = Path(__file__).resolve().parents[2] / "services" / "eligibility" / "migrations"
AT = datetime(2023, 1, 10, 9, tzinfo=UTC)
RUN = uuid4()
# The handlers read only the events; each comes in an envelope as consumed.
ENVELOPE = Envelope(
    source="test", type="test", subject="test", correlation_id="test", schema_version=1, data={}
)


@pytest.fixture
async def conn() -> AsyncIterator[asyncpg.Connection]:
    async with migrated_pool("eligibility", MIGRATIONS) as pool, pool.acquire() as connection:
        # INFLATION_2022 leaves out the households FLOOD_2022 paid (DOMAIN.md §7).
        await connection.execute(
            "INSERT INTO programmes (code, version, kind, status, definition) VALUES"
            " ('INFLATION_2022', 1, 'TOPUP', 'ACTIVE', $1)",
            {"target": {"exclusions": [{"programme_code": "FLOOD_2022"}]}},
        )
        yield connection


def instructed(payment_id: UUID, household_id: UUID, code: str) -> Event:
    instruction = PaymentInstructed(
        payment_id=payment_id,
        run_id=RUN,
        household_id=household_id,
        programme_code=code,
        period="2022-12-15",
        component="BASE",
        amount_riel=100_000,
        payee_name="សុខ ចាន់",
        channel="WING",
        available_from=date(2022, 12, 15),
        claim_until=date(2023, 3, 15),
    )
    return ENVELOPE, instruction


def reported(payment_id: UUID, household_id: UUID, status: str, minutes: int) -> Event:
    report = PaymentStatusReported(
        payment_id=payment_id,
        run_id=RUN,
        household_id=household_id,
        status=status,
        reported_at=AT + timedelta(minutes=minutes),
    )
    return ENVELOPE, report


async def queued(conn: asyncpg.Connection) -> set[UUID]:
    return {r["household_id"] for r in await conn.fetch("SELECT household_id FROM pending")}


async def test_the_latest_status_of_each_payment_wins_within_a_batch(conn: asyncpg.Connection) -> None:
    retried, late, tied, household = uuid4(), uuid4(), uuid4(), uuid4()
    async with conn.transaction():
        await events.on_payment_statuses(
            conn,
            [
                reported(retried, household, "FAILED", 0),
                reported(retried, household, "PAID", 5),
                reported(late, household, "PAID", 5),
                reported(late, household, "FAILED", 0),  # reported earlier, delivered later
                reported(tied, household, "FAILED", 1),
                reported(tied, household, "PAID", 1),  # at the same time: the later one, as one by one
            ],
        )
    rows = await conn.fetch("SELECT payment_id, status FROM payment_statuses")
    assert {r["payment_id"]: r["status"] for r in rows} == {retried: "PAID", late: "PAID", tied: "PAID"}


async def test_only_a_payment_another_programme_excludes_on_decides_its_household_again(
    conn: asyncpg.Connection,
) -> None:
    by_flood, by_covid, unseen, paid_first = uuid4(), uuid4(), uuid4(), uuid4()
    flood_household, covid_household, unseen_household, early_household = uuid4(), uuid4(), uuid4(), uuid4()
    async with conn.transaction():
        await events.on_payment_instructions(
            conn,
            [
                instructed(by_flood, flood_household, "FLOOD_2022"),
                instructed(by_covid, covid_household, "COVID19_CT"),
                instructed(by_flood, flood_household, "FLOOD_2022"),  # sent twice
            ],
        )
        await events.on_payment_statuses(
            conn,
            [
                reported(by_flood, flood_household, "PAID", 0),
                reported(by_covid, covid_household, "PAID", 0),
                reported(unseen, unseen_household, "PAID", 0),  # its instruction not seen yet
                reported(paid_first, early_household, "PAID", 0),
            ],
        )
    assert await queued(conn) == {flood_household, unseen_household, early_household}

    await conn.execute("DELETE FROM pending")
    async with conn.transaction():  # the instruction after its status (another topic)
        await events.on_payment_instructions(conn, [instructed(paid_first, early_household, "FLOOD_2022")])
    assert await queued(conn) == {early_household}
    instructions = await conn.fetchval("SELECT count(*) FROM payment_instructions")
    assert instructions == 3


async def test_no_one_is_decided_again_when_no_programme_excludes_on_payments(
    conn: asyncpg.Connection,
) -> None:
    await conn.execute("DELETE FROM programmes")
    async with conn.transaction():
        await events.on_payment_statuses(conn, [reported(uuid4(), uuid4(), "PAID", 0)])  # instruction unseen
        await events.on_payment_instructions(conn, [instructed(uuid4(), uuid4(), "FLOOD_2022")])
    assert await queued(conn) == set()
    assert await conn.fetchval("SELECT count(*) FROM payment_statuses") == 1
