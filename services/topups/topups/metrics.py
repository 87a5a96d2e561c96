"""Catalogue metrics, read from the database so they are right after a restart."""

from krousar_common.metrics import GAUGE_REFRESH_BUSY_SHARE, DatabaseGauges
from krousar_common.runtime import Runtime

PROGRAMME_VERSIONS = DatabaseGauges(
    "krousar_topups_programme_versions",
    "Programme versions in the catalogue by kind (ROUTINE, TOPUP) and status (DRAFT, ACTIVE, CLOSED).",
    ["kind", "status"],
)


async def refresh(runtime: Runtime) -> None:
    async with runtime.pool.acquire() as conn:
        rows = await conn.fetch("SELECT kind, status, count(*) FROM programme_versions GROUP BY 1, 2")
    PROGRAMME_VERSIONS.replace(((r["kind"], r["status"]), r["count"]) for r in rows)


async def schedule(runtime: Runtime) -> None:
    runtime.every(30, refresh, max_busy_share=GAUGE_REFRESH_BUSY_SHARE)
