"""The programme catalogue service: ``uvicorn topups.app:create_app --factory``."""

from pathlib import Path

from fastapi import FastAPI
from krousar_common.auth import Principal
from krousar_common.runtime import Runtime
from krousar_common.web import ServiceDefinition, create_service_app

from topups import api, metrics, service
from topups.config import Settings
from topups.seed import load_seed

SEEDER = Principal(user_id=service.SEED_ACTOR, roles=frozenset({"programme_manager"}))


async def seed_routine_programmes(runtime: Runtime) -> None:
    """Seed (and publish) every seed version not stored yet; a no-op on later starts."""
    settings: Settings = runtime.settings  # type: ignore[assignment]
    ctx = service.Context(SEEDER, "topups-seed", settings)
    async with runtime.transaction() as conn:
        seeded = await service.seed_programmes(conn, load_seed(settings.seed_dirs), ctx)
    service.log.info("programmes.seeded", seeded=seeded)


DEFINITION = ServiceDefinition(
    name="topups",
    title="Krousar programmes and top-ups",
    description="The programme catalogue: routine programmes, rate tables and operator-defined top-ups.",
    routers=[api.router],
    migrations=Path(__file__).resolve().parent.parent / "migrations",
    on_start=[seed_routine_programmes, metrics.schedule],
)


def create_app(settings: Settings | None = None) -> FastAPI:
    return create_service_app(DEFINITION, settings or Settings())
