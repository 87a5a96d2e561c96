"""Routes of bulk import: upload a CSV, follow its progress, read its errors."""

import csv
import io
from typing import Annotated, Any
from uuid import UUID, uuid4

import structlog
from fastapi import APIRouter, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse, Response
from krousar_common.auth import Principal, require_roles
from krousar_common.errors import Forbidden, InvalidInput, NotFound
from krousar_common.idempotency import idempotent
from krousar_common.runtime import Runtime
from krousar_common.web import Conn, RuntimeDep
from redis.exceptions import RedisError

from registration import service
from registration.imports import csv_format, jobs, spool

router = APIRouter(prefix="/v1/imports", tags=["imports"])
Writer = Annotated[Principal, require_roles("commune_staff", "registry_admin")]
Reader = Annotated[Principal, require_roles("commune_staff", "registry_admin", "viewer")]
log = structlog.get_logger("registration.imports")


@router.post(
    "",
    status_code=202,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"text/csv": {"schema": {"type": "string", "format": "binary"}}},
        }
    },
)
async def upload(
    request: Request,
    runtime: RuntimeDep,
    principal: Writer,
    file_name: Annotated[str, Query(max_length=200)] = "upload.csv",
    wait: Annotated[bool, Query(description="answer only when the import has finished")] = False,
) -> JSONResponse:
    """Import a round from CSV (one row per member; docs/registration.md#import-format).

    Every row is validated; households with an error are reported by row and field and not imported;
    the good ones are written together (all or nothing) and their events published. A retry with
    the same ``Idempotency-Key`` answers the first import and imports nothing again.
    """

    try:
        spooled = await spool.spool(request.stream(), runtime.settings.import_spool_dir)  # type: ignore[attr-defined]
    except csv_format.FileRejected as exc:
        raise InvalidInput(str(exc), field="body") from exc

    async def handle() -> JSONResponse:
        return await _start_import(request, runtime, principal, spooled, file_name, wait=wait)

    try:
        return await idempotent(request, principal, handle, fingerprint=spooled.sha256)
    finally:
        if not spooled.owned_by_job:
            spooled.discard()


async def _start_import(
    request: Request,
    runtime: Runtime,
    principal: Principal,
    spooled: spool.SpooledUpload,
    file_name: str,
    *,
    wait: bool,
) -> JSONResponse:
    import_id = uuid4()
    ctx = service.Context(principal, request.state.correlation_id, request.app.state.settings)
    async with runtime.transaction() as conn:
        await jobs.create(conn, import_id, file_name, principal.user_id)
    work = jobs.run_import(runtime, import_id, spooled, ctx)
    spooled.owned_by_job = True
    if wait:
        await work
    else:
        runtime.spawn(f"import-{import_id}", work)
    async with runtime.pool.acquire() as conn:
        body = await _status(runtime, conn, import_id, principal)
    return JSONResponse(
        jsonable_encoder(body),
        status_code=200 if wait else 202,
        headers={"Location": f"/v1/imports/{import_id}"},
    )


@router.get("/{import_id}")
async def status(import_id: UUID, runtime: RuntimeDep, conn: Conn, principal: Reader) -> dict[str, Any]:
    """Status and progress of an import; the first 100 errors (all of them: /errors.csv)."""
    return await _status(runtime, conn, import_id, principal)


@router.get("/{import_id}/errors.csv")
async def errors_csv(import_id: UUID, conn: Conn, principal: Reader) -> Response:
    row = await _readable_import(conn, import_id, principal)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=["row", "household_ref", "field", "message"])
    writer.writeheader()
    writer.writerows(row["errors"])
    return Response(
        out.getvalue(),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="import-{import_id}-errors.csv"'},
    )


async def _readable_import(conn: Any, import_id: UUID, principal: Principal) -> Any:
    """The import's row; commune staff read only their own uploads (errors quote other communes')."""
    row = await jobs.get(conn, import_id)
    if row is None:
        raise NotFound(f"import {import_id} not found")
    if principal.read_scope is not None and row["created_by"] != principal.user_id:
        raise Forbidden(f"user {principal.user_id} may read only the imports they uploaded")
    return row


async def _status(runtime: Runtime, conn: Any, import_id: UUID, principal: Principal) -> dict[str, Any]:
    row = await _readable_import(conn, import_id, principal)
    body = {k: v for k, v in dict(row).items() if k != "errors"}
    body["errors"] = row["errors"][:100]
    body["error_count"] = len(row["errors"])
    try:
        body["progress"] = await jobs.read_progress(runtime, import_id)
    except RedisError:
        body["progress"] = None
    return body
