"""An import as a job: its row in ``imports``, its progress in Redis, its outcome."""

import asyncio
import dataclasses
import time
from pathlib import Path
from typing import Any, TextIO
from uuid import UUID

import asyncpg
import orjson
import structlog
from krousar_common.collector import collector_paused
from krousar_common.runtime import Runtime
from redis.exceptions import RedisError

from registration import metrics, service
from registration.imports import csv_format
from registration.imports.service import import_round
from registration.imports.spool import SpooledUpload

log = structlog.get_logger("registration.imports")
PROGRESS_TTL = 24 * 3600


async def create(conn: asyncpg.Connection, import_id: UUID, file_name: str, user: str) -> None:
    await conn.execute(
        "INSERT INTO imports (import_id, file_name, status, created_by) VALUES ($1, $2, 'RUNNING', $3)",
        import_id,
        file_name,
        user,
    )


async def get(conn: asyncpg.Connection, import_id: UUID) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM imports WHERE import_id = $1", import_id)


async def finish(
    conn: asyncpg.Connection,
    import_id: UUID,
    status: str,
    *,
    total: int | None = None,
    imported: int = 0,
    errors: list[dict[str, Any]] | None = None,
    message: str | None = None,
) -> None:
    errors = errors or []
    await conn.execute(
        "UPDATE imports SET status = $2, households_total = $3, households_imported = $4,"
        " households_rejected = $5, errors = $6, message = $7, finished_at = now() WHERE import_id = $1",
        import_id,
        status,
        total,
        imported,
        len({e["household_ref"] for e in errors}),
        errors,
        message,
    )


async def mark_interrupted(conn: asyncpg.Connection) -> None:
    """At start-up: imports left RUNNING by a dead process rolled back; say so."""
    await conn.execute(
        "UPDATE imports SET status = 'INTERRUPTED', message = 'the service stopped during the import;"
        " nothing of it was written: upload the file again', finished_at = now() WHERE status = 'RUNNING'"
    )


def _open(path: Path) -> TextIO:
    return path.open(encoding="utf-8-sig", newline="")


def _survey(path: Path) -> csv_format.Survey:
    with _open(path) as source:
        return csv_format.survey(source)


async def read_progress(runtime: Runtime, import_id: UUID) -> dict[str, int] | None:
    raw = await runtime.redis.get(f"import-progress:{import_id}")
    return orjson.loads(raw) if raw else None


def _progress_writer(runtime: Runtime, import_id: UUID) -> Any:
    async def write(done: int, total: int) -> None:
        try:
            await runtime.redis.set(
                f"import-progress:{import_id}", orjson.dumps({"done": done, "total": total}), ex=PROGRESS_TTL
            )
        except RedisError:
            pass  # progress is a convenience; the import itself does not depend on Redis

    return write


async def run_import(runtime: Runtime, import_id: UUID, upload: SpooledUpload, ctx: service.Context) -> None:
    """The import of a spooled upload, which it deletes at the end."""
    # A round makes millions of objects (the survey's identity keys, each batch's rows and events)
    # and no reference cycle: without the pause, the collector would scan the live ones again and
    # again. Other requests' cyclic garbage waits for the end of the import.
    try:
        with collector_paused():
            await _run_import(runtime, import_id, upload.path, ctx)
    finally:
        upload.discard()


async def _run_import(runtime: Runtime, import_id: UUID, path: Path, ctx: service.Context) -> None:
    try:
        found = await asyncio.to_thread(_survey, path)
    except csv_format.FileRejected as exc:
        async with runtime.transaction() as conn:
            await finish(conn, import_id, "REJECTED", message=str(exc))
        return
    total = found.households
    started = time.perf_counter()
    progress = _progress_writer(runtime, import_id)
    try:
        with _open(path) as source:
            households = csv_format.stream_households(source, found)
            async with runtime.transaction() as conn:
                result = await import_round(conn, runtime.pool, found, households, ctx, progress)
                all_errors = [dataclasses.asdict(e) for e in result.errors]
                imported = len(result.imported)
                await finish(conn, import_id, "SUCCEEDED", total=total, imported=imported, errors=all_errors)
    except Exception as exc:
        log.exception("import.failed", import_id=str(import_id))
        async with runtime.transaction() as conn:
            await finish(
                conn, import_id, "FAILED", total=total, message=f"import failed, nothing written: {exc}"
            )
        return
    metrics.IMPORT_HOUSEHOLDS.labels("imported").inc(len(result.imported))
    metrics.IMPORT_HOUSEHOLDS.labels("rejected").inc(total - len(result.imported))
    metrics.IMPORT_DURATION.observe(time.perf_counter() - started)
    log.info(
        "import.finished",
        import_id=str(import_id),
        imported=len(result.imported),
        rejected_rows=len(all_errors),
    )
