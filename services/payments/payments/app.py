"""The payments service: ``uvicorn payments.app:create_app --factory``."""

from pathlib import Path

from fastapi import FastAPI
from krousar_common.web import ServiceDefinition, create_service_app

from payments import api, events, instruction, jobs, metrics, reports
from payments.config import Settings

DEFINITION = ServiceDefinition(
    name="payments",
    title="Krousar payments",
    description=(
        "Payment runs for payment operators and approvers: calculation, maker-checker approval,"
        " instructions to the PSP, statuses, reconciliation and bank exports."
    ),
    routers=[api.router, reports.router],
    migrations=Path(__file__).resolve().parent.parent / "migrations",
    consumers=events.consumers,
    event_sources=lambda settings: [instruction.InstructedLines(settings)],  # type: ignore[arg-type]
    on_start=[events.start_consumers, jobs.schedule, metrics.schedule],
)


def create_app(settings: Settings | None = None) -> FastAPI:
    return create_service_app(DEFINITION, settings or Settings())
