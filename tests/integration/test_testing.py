"""The session's stack check fails fast, naming the component, when part of the stack is down."""

import time

import pytest
from krousar_common.testing import TestStack, free_port


async def test_a_down_redis_fails_the_check_fast_and_says_so() -> None:
    down = TestStack(redis_url=f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there

    started = time.monotonic()
    with pytest.raises(AssertionError, match=r"Redis at redis://127\.0\.0\.1:\d+/0 is not reachable"):
        await down.check_reachable()

    assert time.monotonic() - started < 15
