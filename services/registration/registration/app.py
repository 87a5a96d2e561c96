"""The registration service: ``uvicorn registration.app:create_app --factory``."""

from pathlib import Path

from fastapi import FastAPI
from krousar_common.web import ServiceDefinition, create_service_app

from registration import api, geo, jobs, metrics
from registration.config import Settings
from registration.imports import api as imports_api

DEFINITION = ServiceDefinition(
    name="registration",
    title="Krousar registration",
    description="The IDPoor household registry for commune staff: households, members, scores, equity cards.",
    routers=[api.router, geo.router, imports_api.router],
    migrations=Path(__file__).resolve().parent.parent / "migrations",
    on_start=[jobs.schedule, metrics.schedule],
)


def create_app(settings: Settings | None = None) -> FastAPI:
    return create_service_app(DEFINITION, settings or Settings())
