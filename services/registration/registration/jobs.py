"""Scheduled work of the registry: the daily card expiry."""

from datetime import UTC, date, datetime

import structlog
from krousar_common.auth import Principal
from krousar_common.runtime import Runtime

from registration import changes, service
from registration.config import Settings
from registration.imports import jobs as imports_jobs

log = structlog.get_logger("registration.jobs")
SYSTEM = Principal(user_id="system:card-expiry", roles=frozenset({"registry_admin"}))


async def expire_cards_due(runtime: Runtime, on: date | None = None) -> int:
    settings: Settings = runtime.settings  # type: ignore[assignment]
    day = on or datetime.now(UTC).date()
    async with runtime.transaction() as conn:
        expired = await changes.expire_cards(
            conn, day, service.Context(SYSTEM, f"card-expiry-{day}", settings)
        )
    log.info("cards.expired", on=str(day), count=len(expired))
    return len(expired)


async def schedule(runtime: Runtime) -> None:
    async with runtime.transaction() as conn:
        await imports_jobs.mark_interrupted(conn)
    # Hourly is enough for a daily rule: expiring is idempotent, and a restart catches up.
    runtime.every(3600, expire_cards_due)
