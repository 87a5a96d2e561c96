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

from krousar_common import metrics
from krousar_common.errors import install_error_handlers
from krousar_common.kafka import ConsumerSpec
from krousar_common.logging import configure_logging
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
    on_start: list[Callable[[Runtime], Awaitable[None]]] = field(default_factory=list)


def create_service_app(definition: ServiceDefinition, settings: ServiceSettings) -> FastAPI:
    configure_logging(definition.name, settings.log_level)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        consumers = definition.consumers(settings)
        async with open_runtime(settings, migrations=definition.migrations, consumers=consumers) as runtime:
            app.state.runtime = runtime
            for hook in definition.on_start:
                await hook(runtime)
            yield

    app = FastAPI(
        title=definition.title, description=definition.description, version="0.1.0", lifespan=lifespan
    )
    app.state.settings = settings
    install_error_handlers(app)
    _install_request_middleware(app, definition.name)
    app.include_router(_operations_router())
    for router in definition.routers:
        app.include_router(router)
    return app


def _install_request_middleware(app: FastAPI, service: str) -> None:
    @app.middleware("http")
    async def correlate_and_measure(request: Request, call_next: Callable) -> Response:
        correlation_id = request.headers.get("x-correlation-id") or str(uuid.uuid4())
        structlog.contextvars.bind_contextvars(correlation_id=correlation_id)
        request.state.correlation_id = correlation_id
        started = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        template = getattr(route, "path", "unmatched")
        metrics.HTTP_REQUEST_DURATION.labels(
            service, request.method, template, str(response.status_code)
        ).observe(time.perf_counter() - started)
        response.headers["x-correlation-id"] = correlation_id
        structlog.contextvars.unbind_contextvars("correlation_id")
        return response


async def _check(name: str, probe: Awaitable[Any]) -> tuple[str, str]:
    try:
        await asyncio.wait_for(probe, 3)
        return name, "ok"
    except Exception as exc:
        return name, f"failing: {type(exc).__name__}: {exc}"[:200]


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


def get_runtime(request: Request) -> Runtime:
    return request.app.state.runtime


async def connection(request: Request) -> AsyncIterator[asyncpg.Connection]:
    """Request dependency for reads: a pooled connection, no transaction."""
    async with request.app.state.runtime.pool.acquire() as conn:
        yield conn


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
Conn = Annotated[asyncpg.Connection, Depends(connection)]
