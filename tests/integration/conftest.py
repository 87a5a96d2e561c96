"""Fixtures for tests against the real stack (Kafka, PostgreSQL, Redis started by `make test`).

The session gets its own topics, databases and consumer groups (see ``TestStack``); services
run as real uvicorn processes so tests can kill -9 and restart them.
"""

from collections.abc import AsyncIterator

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
async def registration(stack: TestStack) -> AsyncIterator[ServiceProcess]:
    service = await ServiceProcess("registration", stack).start()
    yield service
    service.stop()


@pytest.fixture(scope="session")
async def eligibility(stack: TestStack) -> AsyncIterator[ServiceProcess]:
    # Small batches (5) make "killed in the middle of a batch" easy to reach.
    service = await ServiceProcess("eligibility", stack, ELIGIBILITY_CONSUMER_BATCH_SIZE="5").start()
    yield service
    service.stop()
