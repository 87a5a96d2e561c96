"""``Idempotency-Key`` for POST requests, kept in Redis for 24 hours.

A retried request with the same key (same user, same path, same body) gets the first response
again and creates nothing new. The same key with a different body is a 422. When Redis is down
the request still runs: the database constraints remain the guard against doubles.
"""

import hashlib
from collections.abc import Awaitable, Callable

import orjson
import structlog
from fastapi import Request
from fastapi.responses import JSONResponse, Response
from redis.exceptions import RedisError

from krousar_common.auth import Principal
from krousar_common.errors import Conflict, InvalidInput

log = structlog.get_logger("krousar.idempotency")
TTL_SECONDS = 24 * 3600
PENDING = b"pending"
# A retried write needs these as much as the body (the ETag is the next If-Match).
REPLAYED_HEADERS = ("etag", "location")


def _redis_key(request: Request, principal: Principal, key: str) -> str:
    service = request.app.state.settings.service_name
    return f"idem:{service}:{principal.user_id}:{request.url.path}:{key}"


async def idempotent(
    request: Request,
    principal: Principal,
    handle: Callable[[], Awaitable[Response]],
    *,
    fingerprint: str | None = None,
) -> Response:
    """``handle()`` once per key; ``fingerprint``: the body's SHA-256 where the route streamed it."""
    key = request.headers.get("idempotency-key")
    if not key:
        return await handle()
    if len(key) > 200:
        raise InvalidInput("Idempotency-Key is longer than 200 characters", field="Idempotency-Key")
    redis = request.app.state.runtime.redis
    redis_key = _redis_key(request, principal, key)
    fingerprint = fingerprint or hashlib.sha256(await request.body()).hexdigest()
    try:
        claimed = await redis.set(redis_key, PENDING, nx=True, ex=TTL_SECONDS)
        if not claimed:
            return _replay(await redis.get(redis_key), fingerprint)
    except RedisError as exc:
        log.warning("idempotency.redis_unavailable", error=str(exc))
        return await handle()
    try:
        response = await handle()
    except BaseException:
        await _forget(redis, redis_key)
        raise
    if response.status_code >= 500:
        await _forget(redis, redis_key)
        return response
    stored = {
        "fingerprint": fingerprint,
        "status": response.status_code,
        "body": orjson.loads(response.body),
        "headers": {k: v for k, v in response.headers.items() if k in REPLAYED_HEADERS},
    }
    try:
        await redis.set(redis_key, orjson.dumps(stored), ex=TTL_SECONDS)
    except RedisError as exc:
        log.warning("idempotency.store_failed", error=str(exc))
    return response


def _replay(stored: bytes | None, fingerprint: str) -> JSONResponse:
    if stored is None or stored == PENDING:
        raise Conflict("a request with this Idempotency-Key is still being processed; retry shortly")
    first = orjson.loads(stored)
    if first["fingerprint"] != fingerprint:
        raise InvalidInput(
            "this Idempotency-Key was used with a different request body", field="Idempotency-Key"
        )
    headers = {**first.get("headers", {}), "Idempotent-Replayed": "true"}
    return JSONResponse(first["body"], status_code=first["status"], headers=headers)


async def _forget(redis: object, redis_key: str) -> None:
    try:
        await redis.delete(redis_key)  # type: ignore[attr-defined]
    except RedisError:
        pass
