"""A national-style payment run under way, for the tests that break things in the middle of one:
the payments service and the PSP simulator started with the settings a test gives, a projection
of ``households`` decisions loaded with COPY, a COVID19_CT 2023-03 run created and approved."""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
from krousar_common.testing import ServiceProcess, TestStack
from test_payments import approve, created

from bench.bench_payments import load_projection


@dataclass
class RunUnderWay:
    payments: ServiceProcess
    psp: ServiceProcess
    ledger: asyncpg.Connection  # the payments database
    bank: asyncpg.Connection  # the PSP simulator's database
    run: dict[str, Any]  # as POST /v1/runs answered, CALCULATED


@contextlib.asynccontextmanager
async def approved_run(
    stack: TestStack, households: int, *, payments_env: dict[str, str], psp_env: dict[str, str]
) -> AsyncIterator[RunUnderWay]:
    """The run just approved (its instructions starting); both services killed on the way out."""
    payments = ServiceProcess("payments", stack, **payments_env)
    psp = ServiceProcess("psp_simulator", stack, PSP_DATABASE=stack.database("psp_simulator"), **psp_env)
    await asyncio.gather(payments.start(), psp.start())
    ledger, bank = await stack.connect("payments"), await stack.connect("psp_simulator")
    try:
        await load_projection(stack, households)
        run = await created(payments, "COVID19_CT", period="2023-03")
        assert (await approve(payments, run["run_id"])).status_code == 200
        yield RunUnderWay(payments, psp, ledger, bank, run)
    finally:
        await ledger.close()
        await bank.close()
        payments.kill()
        psp.kill()
