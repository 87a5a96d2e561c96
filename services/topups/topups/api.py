"""HTTP routes of the programme catalogue: top-up lifecycle for programme managers, reads for all."""

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any

import asyncpg
from fastapi import APIRouter, Path, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from krousar_common.auth import ROLES, Principal, require_roles
from krousar_common.db import INT_MAX
from krousar_common.idempotency import idempotent
from krousar_common.programmes import ProgrammeKind, ProgrammeStatus, ProgrammeVersion
from krousar_common.web import Conn, RuntimeDep
from pydantic import BaseModel

from topups import service

router = APIRouter(prefix="/v1", tags=["programmes"])
Manager = Annotated[Principal, require_roles("programme_manager")]
Reader = Annotated[Principal, require_roles(*ROLES)]
Code = Annotated[str, "programme code"]


class ProgrammeVersionRead(BaseModel):
    code: str
    version: int
    kind: ProgrammeKind
    status: ProgrammeStatus
    origin: str
    superseded_by: int | None
    created_at: datetime
    created_by: str
    updated_at: datetime
    updated_by: str
    activated_at: datetime | None
    activated_by: str | None
    closed_at: datetime | None
    closed_by: str | None
    definition: ProgrammeVersion


class ProgrammeRead(BaseModel):
    code: str
    kind: ProgrammeKind
    title: str
    versions: list[ProgrammeVersionRead]


class ProgrammeSummary(BaseModel):
    code: str
    kind: ProgrammeKind
    title: str
    latest_version: int
    latest_status: ProgrammeStatus
    active_version: int | None
    draft_version: int | None
    versions: int


def context(request: Request, principal: Principal) -> service.Context:
    return service.Context(principal, request.state.correlation_id, request.app.state.settings)


async def _write(
    request: Request,
    runtime: RuntimeDep,
    principal: Principal,
    use_case: Callable[[asyncpg.Connection, service.Context], Awaitable[tuple[str, int]]],
    status: int = 200,
) -> JSONResponse:
    async def handle() -> JSONResponse:
        async with runtime.transaction() as conn:
            code, version = await use_case(conn, context(request, principal))
            view = await service.get_version_view(conn, code, version)
        body = jsonable_encoder(ProgrammeVersionRead.model_validate(view))
        headers = {"Location": f"/v1/programmes/{code}"} if status == 201 else None
        return JSONResponse(body, status_code=status, headers=headers)

    return await idempotent(request, principal, handle)


@router.post("/topups", status_code=201, response_model=ProgrammeVersionRead)
async def create_topup(
    body: ProgrammeVersion, request: Request, runtime: RuntimeDep, principal: Manager
) -> JSONResponse:
    """Define a top-up (kind TOPUP). It is stored as DRAFT version 1 whatever ``status`` and
    ``version`` the body carries; activate it to put it in force."""
    return await _write(
        request, runtime, principal, lambda conn, ctx: service.create_topup(conn, body, ctx), 201
    )


@router.put("/topups/{code}", response_model=ProgrammeVersionRead)
async def edit_draft(
    code: Code, body: ProgrammeVersion, request: Request, runtime: RuntimeDep, principal: Manager
) -> JSONResponse:
    """Replace the definition of the top-up's DRAFT version (an ACTIVE version never changes)."""

    async def use_case(conn: asyncpg.Connection, ctx: service.Context) -> tuple[str, int]:
        return code, await service.update_draft(conn, code, body, ctx)

    return await _write(request, runtime, principal, use_case)


def _transition_route(path: str, use_case: Callable[..., Awaitable[int]], summary: str) -> None:
    @router.post(f"/topups/{{code}}/{path}", response_model=ProgrammeVersionRead, summary=summary, name=path)
    async def transition(
        code: Code, request: Request, runtime: RuntimeDep, principal: Manager
    ) -> JSONResponse:
        async def run(conn: asyncpg.Connection, ctx: service.Context) -> tuple[str, int]:
            return code, await use_case(conn, code, ctx)

        return await _write(request, runtime, principal, run)


_transition_route("activate", service.activate, "Activate the DRAFT: rates frozen, version published")
_transition_route("versions", service.start_new_version, "Start a new DRAFT version from the ACTIVE one")
_transition_route("close", service.close, "Close the top-up: the ACTIVE version and any DRAFT")


@router.get("/programmes", response_model=list[ProgrammeSummary])
async def list_programmes(conn: Conn, principal: Reader) -> list[dict[str, Any]]:
    """Every programme, routine and top-up, with its latest and ACTIVE versions."""
    return await service.list_programme_views(conn)


@router.get("/programmes/{code}", response_model=ProgrammeRead)
async def get_programme(code: Code, conn: Conn, principal: Reader) -> dict[str, Any]:
    """A programme with every version, oldest first."""
    return await service.get_programme_view(conn, code)


@router.get("/programmes/{code}/versions/{version}", response_model=ProgrammeVersionRead)
async def get_version(
    code: Code, version: Annotated[int, Path(ge=1, le=INT_MAX)], conn: Conn, principal: Reader
) -> dict[str, Any]:
    return await service.get_version_view(conn, code, version)
