"""Redis for runs: live progress of a calculation or an instruction, and the calculation lock.

Redis is a convenience here, never the guard: when it is down, progress is simply not shown and
the PostgreSQL constraints (one DRAFT run per programme and period, an advisory lock, the unique
index on payment lines) still keep a period from being calculated twice.
"""

from typing import Any
from uuid import UUID

import orjson
import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

log = structlog.get_logger("payments.progress")
PROGRESS_TTL = 24 * 3600

# Renew or release the lock only while it still holds our value: an expired lock that another
# process took since is not ours to touch.
_RENEW = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('expire', KEYS[1], ARGV[2]) end return 0"
)
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"


def lock_key(programme_code: str, period: str) -> str:
    return f"payments:calculation-lock:{programme_code}:{period}"


def progress_key(run_id: UUID) -> str:
    return f"payments:progress:{run_id}"


class CalculationLock:
    """One calculation per (programme, period) at a time; the value is the run holding it."""

    def __init__(self, redis: Redis, programme_code: str, period: str, run_id: UUID, ttl: int) -> None:
        self.redis = redis
        self.key = lock_key(programme_code, period)
        self.value = str(run_id)
        self.ttl = ttl

    async def acquire(self) -> bool | None:
        """True if taken, False if another run holds it, None when Redis can't say."""
        try:
            return bool(await self.redis.set(self.key, self.value, nx=True, ex=self.ttl))
        except RedisError as exc:
            log.warning("calculation_lock.redis_unavailable", error=str(exc))
            return None

    async def holder(self) -> str | None:
        try:
            raw = await self.redis.get(self.key)
        except RedisError:
            return None
        return raw.decode() if raw else None

    async def renew(self) -> None:
        try:
            await self.redis.eval(_RENEW, 1, self.key, self.value, self.ttl)
        except RedisError as exc:
            log.warning("calculation_lock.renew_failed", error=str(exc))

    async def release(self, value: str | None = None) -> None:
        """Release the lock if ``value`` (by default ours) still holds it."""
        try:
            await self.redis.eval(_RELEASE, 1, self.key, value or self.value)
        except RedisError as exc:
            log.warning("calculation_lock.release_failed", error=str(exc))


async def report(redis: Redis, run_id: UUID, phase: str, done: int, total: int) -> None:
    body = orjson.dumps({"phase": phase, "done": done, "total": total})
    try:
        await redis.set(progress_key(run_id), body, ex=PROGRESS_TTL)
    except RedisError:
        pass  # progress is for people watching; the run does not depend on it


async def read(redis: Redis, run_id: UUID) -> dict[str, Any] | None:
    try:
        raw = await redis.get(progress_key(run_id))
    except RedisError:
        return None
    return orjson.loads(raw) if raw else None
