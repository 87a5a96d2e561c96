"""The FastAPI shell every service shares: lifespan with the runtime, problem+json errors,
correlation ids, request metrics, ``/metrics``, ``/health/live`` and ``/health/ready``."""

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import asyncpg
import structlog
from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from krousar_common import collector, metrics
from krousar_common.errors import install_error_handlers
from krousar_common.kafka import ConsumerSpec
from krousar_common.logging import configure_logging
from krousar_common.outbox import Source
from krousar_common.runtime import Runtime, open_runtime
from krousar_common.settings import ServiceSettings

log = structlog.get_logger("krousar.web")


@dataclass
class ServiceDefinition:
    """Everything that makes a service different from the others."""

    name: str
    title: str
    description: str
    routers: list[APIRouter]
    migrations: Path | None = None
    consumers: Callable[[ServiceSettings], list[ConsumerSpec]] = lambda _settings: []
    # Events the relay publishes from the service's own tables besides the outbox (outbox.Source).
    event_sources: Callable[[ServiceSettings], list[Source]] = lambda _settings: []
    on_start: list[Callable[[Runtime], Awaitable[None]]] = field(default_factory=list)


def create_service_app(definition: ServiceDefinition, settings: ServiceSettings) -> FastAPI:
    configure_logging(definition.name, settings.log_level)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        consumers = definition.consumers(settings)
        async with open_runtime(
            settings,
            migrations=definition.migrations,
            consumers=consumers,
            event_sources=definition.event_sources(settings),
        ) as runtime:
            app.state.runtime = runtime
            for hook in definition.on_start:
                await hook(runtime)
            collector.settle()
            yield

    app = FastAPI(
        title=definition.title, description=definition.description, version="0.1.0", lifespan=lifespan
    )
    app.state.settings = settings
    install_error_handlers(app)
    app.add_middleware(RequestContextMiddleware, service=definition.name)
    app.include_router(_operations_router())
    for router in definition.routers:
        app.include_router(router)
    return app


class RequestContextMiddleware:
    """Binds a correlation id to every request (and its log lines) and measures its duration.

    A plain ASGI middleware: unlike ``BaseHTTPMiddleware`` it lets an unexpected exception reach
    the 500 problem+json handler untouched, and costs less per request.
    """

    def __init__(self, app: Any, service: str) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        correlation_id = headers.get(b"x-correlation-id", b"").decode() or str(uuid.uuid4())
        scope.setdefault("state", {})["correlation_id"] = correlation_id
        structlog.contextvars.bind_contextvars(correlation_id=correlation_id)
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: dict) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-correlation-id", correlation_id.encode()),
                ]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            template = getattr(scope.get("route"), "path", "unmatched")
            metrics.HTTP_REQUEST_DURATION.labels(
                self.service, scope["method"], template, str(status)
            ).observe(time.perf_counter() - started)
            structlog.contextvars.unbind_contextvars("correlation_id")


async def _check(name: str, probe: Awaitable[Any]) -> tuple[str, str]:
    try:
        await asyncio.wait_for(probe, 3)
        return name, "ok"
    except Exception as exc:
        return name, f"failing: {type(exc).__name__}: {exc}"[:200]


async def _workers_alive(runtime: Runtime) -> None:
    """The outbox relay and every consumer must still be running."""
    dead = [t.get_name() for t in runtime.tasks if t.done()]
    if dead:
        raise RuntimeError(f"stopped: {', '.join(dead)}")


def _operations_router() -> APIRouter:
    router = APIRouter(tags=["operations"])

    @router.get("/health/live")
    async def live() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/health/ready")
    async def ready(request: Request) -> JSONResponse:
        runtime: Runtime = request.app.state.runtime
        checks = dict(
            await asyncio.gather(
                _check("postgres", runtime.pool.fetchval("SELECT 1")),
                _check("redis", runtime.redis.ping()),
                _check("kafka", runtime.producer.client.fetch_all_metadata()),
                _check("workers", _workers_alive(runtime)),
            )
        )
        healthy = all(v == "ok" for v in checks.values())
        return JSONResponse(
            {"status": "ok" if healthy else "failing", "checks": checks}, 200 if healthy else 503
        )

    @router.get("/metrics", include_in_schema=False)
    async def prometheus_metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return router


async def get_runtime(request: Request) -> Runtime:
    # Async, as every dependency on a request's path: FastAPI runs a plain function in a thread.
    return request.app.state.runtime


async def connection(request: Request) -> AsyncIterator[asyncpg.Connection]:
    """Request dependency for reads: a pooled connection, no transaction."""
    async with request.app.state.runtime.pool.acquire() as conn:
        yield conn


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
Conn = Annotated[asyncpg.Connection, Depends(connection)]
