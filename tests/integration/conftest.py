"""Fixtures for tests against the real stack (Kafka, PostgreSQL, Redis started by `make test`).

The session gets its own topics, databases and consumer groups (see ``TestStack``); services
run as real uvicorn processes so tests can kill -9 and restart them.
"""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from krousar_common.testing import ServiceProcess, TestStack


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration" in str(item.path):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
async def stack() -> AsyncIterator[TestStack]:
    test_stack = TestStack()
    await test_stack.check_reachable()
    await test_stack.create_topics()
    yield test_stack
    await test_stack.drop()


@pytest.fixture(scope="session")
def import_spool(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the registration service keeps uploads until their import ends."""
    return tmp_path_factory.mktemp("import-spool")


@pytest.fixture(scope="session")
async def registration(stack: TestStack, import_spool: Path) -> AsyncIterator[ServiceProcess]:
    service = await ServiceProcess(
        "registration", stack, REGISTRATION_IMPORT_SPOOL_DIR=str(import_spool)
    ).start()
    yield service
    service.stop()


@pytest.fixture(scope="session")
async def eligibility(stack: TestStack) -> AsyncIterator[ServiceProcess]:
    # Small batches (5) make "killed in the middle of a batch" easy to reach.
    service = await ServiceProcess("eligibility", stack, ELIGIBILITY_CONSUMER_BATCH_SIZE="5").start()
    yield service
    service.stop()


@pytest.fixture(scope="session")
async def topups(stack: TestStack) -> AsyncIterator[ServiceProcess]:
    service = await ServiceProcess("topups", stack).start()
    yield service
    service.stop()


@pytest.fixture(scope="session")
async def psp_simulator(stack: TestStack) -> AsyncIterator[ServiceProcess]:
    # Shares far from the defaults (95/3/2) so a handful of payments shows every outcome, half
    # the statuses reported twice, and delays short enough to reconcile a run in seconds.
    service = await ServiceProcess(
        "psp_simulator",
        stack,
        PSP_DATABASE=stack.database("psp_simulator"),
        PSP_PAID_SHARE="0.5",
        PSP_FAILED_SHARE="0.3",
        PSP_DUPLICATE_SHARE="0.5",
        PSP_SETTLE_DELAY_SECONDS="0.2",
        PSP_UNCLAIMED_DELAY_SECONDS="1",
        PSP_REPORT_INTERVAL_SECONDS="0.2",
        PSP_SEED=f"test-{stack.run_id}",
    ).start()
    yield service
    service.stop()


@pytest.fixture(scope="session")
async def payments(stack: TestStack) -> AsyncIterator[ServiceProcess]:
    # Small instruction batches (a batch is one short statement) make "killed in the middle of
    # instructing" easy to reach.
    service = await ServiceProcess(
        "payments",
        stack,
        PAYMENTS_INSTRUCTION_BATCH_SIZE="5",
        PAYMENTS_RESUME_INTERVAL_SECONDS="1",
        PAYMENTS_RECONCILE_INTERVAL_SECONDS="0.5",
    ).start()
    yield service
    service.stop()
