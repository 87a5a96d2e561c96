"""Enrolment at the commune hall: identity and payee verified by commune staff."""

from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from krousar_common.idempotency import idempotent
from krousar_common.web import RuntimeDep

from eligibility import service, store
from eligibility.api.common import CommuneStaff, context
from eligibility.models import EnrolmentCreate, EnrolmentRead, EnrolmentWithdrawal

router = APIRouter(prefix="/v1/enrolments", tags=["enrolments"])


async def _enrolment_response(conn: Any, enrolment_id: UUID, status: int) -> JSONResponse:
    row = await store.get_enrolment(conn, enrolment_id)
    body = jsonable_encoder(EnrolmentRead.model_validate(dict(row)))
    decisions = await store.decisions_of_household(conn, row["household_id"])
    body["decisions"] = jsonable_encoder([decision_summary(d) for d in decisions])
    return JSONResponse(body, status_code=status)


def decision_summary(row: Any) -> dict[str, Any]:
    return {k: row[k] for k in ("programme_code", "programme_version", "eligible", "reasons", "payment_key")}


@router.post("", status_code=201, response_model=EnrolmentRead)
async def enrol(
    body: EnrolmentCreate, request: Request, runtime: RuntimeDep, principal: CommuneStaff
) -> JSONResponse:
    """Enrol a household (commune staff of its commune): identity checked, payee (the head, or a
    named proxy), channel and account. A second enrolment replaces the first. The answer carries
    the household's decisions after it."""

    async def handle() -> JSONResponse:
        async with runtime.transaction() as conn:
            enrolment_id = await service.enrol(conn, body, context(request, principal))
            return await _enrolment_response(conn, enrolment_id, 201)

    return await idempotent(request, principal, handle)


@router.post("/{enrolment_id}/withdrawal", response_model=EnrolmentRead)
async def withdraw(
    enrolment_id: UUID,
    body: EnrolmentWithdrawal,
    request: Request,
    runtime: RuntimeDep,
    principal: CommuneStaff,
) -> JSONResponse:
    """End an enrolment (the household stays registered; it is NOT_ENROLLED until enrolled again)."""

    async def handle() -> JSONResponse:
        async with runtime.transaction() as conn:
            await service.withdraw_enrolment(conn, enrolment_id, body.reason, context(request, principal))
            return await _enrolment_response(conn, enrolment_id, 200)

    return await idempotent(request, principal, handle)
