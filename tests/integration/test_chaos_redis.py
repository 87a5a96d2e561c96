"""Redis goes away: writes stay safe. Idempotency then falls back to the database constraints
(a retried registration is refused by the national-ID rule instead of creating a twin), and
readiness says Redis is failing. Runs against a Redis of its own, so no other test notices."""

import subprocess
import uuid
from collections.abc import Iterator

import pytest
from factories import make_household
from krousar_common.testing import ServiceProcess, TestStack, bearer, free_port, wait_for

STAFF = bearer("staff-redis", "commune_staff", communes=["120101"])


@pytest.fixture
def own_redis(tmp_path) -> Iterator[tuple[subprocess.Popen, int]]:
    port = free_port()
    process = subprocess.Popen(
        ["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--dir", str(tmp_path), "--save", ""],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    yield process, port
    process.kill()
    process.wait(10)


async def test_redis_down_keeps_writes_safe(stack: TestStack, own_redis) -> None:
    redis_process, port = own_redis
    registration = await ServiceProcess(
        "registration", stack, REGISTRATION_REDIS_URL=f"redis://127.0.0.1:{port}/0"
    ).start()
    registry = await stack.connect("registration")
    try:
        async with registration.client() as client:
            with_redis = await client.post(
                "/v1/households",
                json=make_household(),
                headers={**STAFF, "Idempotency-Key": str(uuid.uuid4())},
            )
            assert with_redis.status_code == 201

            redis_process.kill()
            redis_process.wait(10)
            key = str(uuid.uuid4())
            body = make_household()
            first = await client.post("/v1/households", json=body, headers={**STAFF, "Idempotency-Key": key})
            retry = await client.post("/v1/households", json=body, headers={**STAFF, "Idempotency-Key": key})
            ready = await wait_for(lambda: _not_ready(client), what="readiness to report Redis")

        assert first.status_code == 201, first.text
        assert retry.status_code == 409, retry.text  # the database's national-ID guard, not a twin
        assert retry.headers["content-type"] == "application/problem+json"
        national_id = body["members"][0]["national_id"]
        assert (
            await registry.fetchval("SELECT count(*) FROM members WHERE national_id = $1", national_id) == 1
        )
        assert ready["checks"]["redis"].startswith("failing")
    finally:
        await registry.close()
        registration.stop()


async def _not_ready(client) -> dict | None:
    response = await client.get("/health/ready")
    return response.json() if response.status_code == 503 else None
