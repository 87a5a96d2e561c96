"""The eligibility service: ``uvicorn eligibility.app:create_app --factory``."""

from pathlib import Path

from fastapi import FastAPI
from krousar_common.web import ServiceDefinition, create_service_app

from eligibility import events, jobs, metrics
from eligibility.api import routers
from eligibility.config import Settings

DEFINITION = ServiceDefinition(
    name="eligibility",
    title="Krousar eligibility",
    description="Which households each programme covers, with reasons; enrolment at the commune hall.",
    routers=routers,
    migrations=Path(__file__).resolve().parent.parent / "migrations",
    consumers=events.consumers,
    on_start=[events.start_consumers, jobs.schedule, metrics.schedule],
)


def create_app(settings: Settings | None = None) -> FastAPI:
    return create_service_app(DEFINITION, settings or Settings())
