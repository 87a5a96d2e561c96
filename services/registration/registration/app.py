"""The registration service: ``uvicorn registration.app:create_app --factory``."""

from pathlib import Path

from fastapi import FastAPI
from krousar_common.runtime import Runtime
from krousar_common.web import ServiceDefinition, create_service_app

from registration import api, geo, jobs, metrics
from registration.config import Settings
from registration.domain import geography
from registration.imports import api as imports_api
from registration.snapshots import commune_units


async def load_reference_data(_runtime: Runtime) -> None:
    """The gazetteer and the commune classification, read before the first request needs them."""
    geography.load_gazetteer()
    commune_units()


DEFINITION = ServiceDefinition(
    name="registration",
    title="Krousar registration",
    description="The IDPoor household registry for commune staff: households, members, scores, equity cards.",
    routers=[api.router, geo.router, imports_api.router],
    migrations=Path(__file__).resolve().parent.parent / "migrations",
    on_start=[load_reference_data, jobs.schedule, metrics.schedule],
)


def create_app(settings: Settings | None = None) -> FastAPI:
    return create_service_app(DEFINITION, settings or Settings())
