"""Full re-evaluations: what the daily job does, asked for by an operator (optionally for a day)."""

from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from krousar_common.errors import NotFound
from krousar_common.idempotency import idempotent
from krousar_common.web import Conn, RuntimeDep

from eligibility import jobs, store
from eligibility.api.common import Operator, Reader
from eligibility.models import EvaluationRead, EvaluationRequest

router = APIRouter(prefix="/v1", tags=["evaluations"])


@router.post("/evaluations", status_code=202, response_model=EvaluationRead)
async def request_evaluation(
    body: EvaluationRequest, request: Request, runtime: RuntimeDep, principal: Operator
) -> JSONResponse:
    """Decide every household for every programme again, for ``on`` (the clock is then held at that
    day until a request without ``on`` lets it follow the calendar again). Runs in the background:
    follow it with GET /v1/evaluations/{run_id}. A retry with the same ``Idempotency-Key`` answers
    the first run and requests no other."""

    async def handle() -> JSONResponse:
        async with runtime.transaction() as conn:
            run_id = await jobs.set_day(conn, body.on, principal.user_id)
            row = await store.get_run(conn, run_id)
        return JSONResponse(jsonable_encoder(EvaluationRead.model_validate(dict(row))), status_code=202)

    return await idempotent(request, principal, handle)


@router.get("/evaluations/{run_id}", response_model=EvaluationRead)
async def get_evaluation(run_id: UUID, conn: Conn, principal: Reader) -> dict[str, Any]:
    row = await store.get_run(conn, run_id)
    if row is None:
        raise NotFound(f"no evaluation run {run_id}")
    return dict(row)


@router.get("/clock")
async def get_clock(conn: Conn, principal: Reader) -> Any:
    """The day decisions are made for, and whether an operator holds it there."""
    return jsonable_encoder(dict(await store.get_clock(conn) or {}))
