"""The PSP simulator: ``uvicorn psp_simulator.app:create_app --factory``.

It stands in for Wing: it consumes ``payments.instructions.v1`` and, after a configurable delay,
reports each payment PAID, FAILED (with a reason) or UNCLAIMED on ``payments.status.v1`` in
configurable shares, sometimes twice. Its small database makes it idempotent by payment id.
"""

from pathlib import Path

from fastapi import FastAPI
from krousar_common.web import ServiceDefinition, create_service_app

from psp_simulator import api, events, jobs
from psp_simulator.config import Settings

DEFINITION = ServiceDefinition(
    name="psp_simulator",
    title="Krousar PSP simulator",
    description="Settles, fails or leaves unclaimed a configurable share of payment instructions.",
    routers=[api.router],
    migrations=Path(__file__).resolve().parent.parent / "migrations",
    consumers=events.consumers,
    on_start=[events.start_consumers, jobs.schedule],
)


def create_app(settings: Settings | None = None) -> FastAPI:
    return create_service_app(DEFINITION, settings or Settings())
