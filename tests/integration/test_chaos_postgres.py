"""PostgreSQL restarts while a consumer is applying a batch: the batch is retried once the
database is back, nothing is lost, nothing applied twice. Eligibility gets a PostgreSQL server
of its own (a throwaway cluster on a free port), so the restart disturbs no other test."""

import asyncio
import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from krousar_common.testing import ServiceProcess, TestStack, free_port, wait_for
from test_walking_skeleton import register

PG_BIN = (
    Path(sorted(glob.glob("/usr/lib/postgresql/*/bin"))[-1])
    if glob.glob("/usr/lib/postgresql/*/bin")
    else None
)


def as_postgres(*command: str) -> None:
    prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    subprocess.run([*prefix, *command], check=True, capture_output=True, timeout=120)


class OwnPostgres:
    def __init__(self) -> None:
        self.port = free_port()
        self.data = Path(tempfile.mkdtemp(prefix="krousar-pg-")) / "data"

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}"

    def init(self) -> None:
        if os.geteuid() == 0:
            shutil.chown(self.data.parent, "postgres", "postgres")
        as_postgres(str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1"
        as_postgres(
            str(PG_BIN / "pg_ctl"),
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.data / "log"),
            "-w",
            "start",
        )

    def stop(self) -> None:
        as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")


@pytest.fixture
async def own_postgres() -> AsyncIterator[OwnPostgres]:
    assert PG_BIN is not None, "PostgreSQL server binaries are missing: run deploy/local/install.sh"
    server = OwnPostgres()
    await asyncio.to_thread(server.init)
    await asyncio.to_thread(server.start)
    yield server
    await asyncio.to_thread(server.stop)
    shutil.rmtree(server.data.parent, ignore_errors=True)


async def test_consumer_survives_a_postgres_restart(stack: TestStack, registration, own_postgres) -> None:
    eligibility = await ServiceProcess(
        "eligibility",
        stack,
        ELIGIBILITY_PG_URL=own_postgres.url,
        ELIGIBILITY_CONSUMER_BATCH_SIZE="5",
        KROUSAR_GROUP_SUFFIX=f".t{stack.run_id}.pg",
    ).start()
    try:
        ids = list(await asyncio.gather(*(register(registration) for _ in range(60))))
        await asyncio.to_thread(own_postgres.stop)  # in the middle of consuming them
        await asyncio.sleep(2)
        await asyncio.to_thread(own_postgres.start)

        conn = await asyncpg.connect(f"{own_postgres.url}/{stack.database('eligibility')}")
        try:

            async def applied() -> bool:
                count = await conn.fetchval(
                    "SELECT count(*) FROM households WHERE household_id = ANY($1::uuid[])", ids
                )
                return count == len(ids)

            await wait_for(
                applied, timeout=90, interval=0.5, what="every household applied after the restart"
            )
            versions = await conn.fetch(
                "SELECT version FROM households WHERE household_id = ANY($1::uuid[])", ids
            )
            assert [r["version"] for r in versions] == [1] * len(ids)  # each applied once, none skipped
        finally:
            await conn.close()
    finally:
        eligibility.stop()
