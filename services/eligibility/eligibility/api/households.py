"""A household as eligibility sees it: its projection, eligibility with the arithmetic, enrolment
history and PWYC conditions."""

from datetime import date
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from krousar_common.auth import Principal
from krousar_common.errors import NotFound
from krousar_common.idempotency import idempotent
from krousar_common.web import Conn, RuntimeDep

from eligibility import service, store, views
from eligibility.api.common import HealthStaff, Reader, context
from eligibility.models import ConditionCreate, ConditionRead, EnrolmentRead

router = APIRouter(prefix="/v1/households", tags=["households"])
Period = Annotated[str | None, Query(pattern=r"^\d{4}-\d{2}$", description="YYYY-MM")]


async def readable_household(conn: Conn, household_id: UUID, principal: Principal) -> Any:
    row = await store.get_household(conn, household_id)
    if row is None:
        raise NotFound(f"household {household_id} is not known to eligibility (yet)")
    principal.ensure_reads(row["commune_code"])
    return row


@router.get("/{household_id}")
async def get_household(household_id: UUID, conn: Conn, principal: Reader) -> dict[str, Any]:
    """The household as eligibility knows it (its projection of the registry's events)."""
    row = await readable_household(conn, household_id, principal)
    snapshot = row["snapshot"]
    if not principal.has_any(*views.HIV_READERS):  # legally sensitive: only roles that need it
        for member in snapshot["members"]:
            member["lives_with_hiv"] = None
    return {"household_id": str(row["household_id"]), "version": row["version"], "snapshot": snapshot}


@router.get("/{household_id}/eligibility")
async def get_eligibility(
    household_id: UUID,
    conn: Conn,
    principal: Reader,
    period: Period = None,
    on: Annotated[date | None, Query(alias="date", description="default: the clock's day")] = None,
) -> Any:
    """For every programme: eligible or not, the reasons, and the amount of each payment of the
    period (or the current payment on ``date``) with the calculator's arithmetic."""
    await readable_household(conn, household_id, principal)
    view = await views.household_eligibility(conn, household_id, period=period, on=on, principal=principal)
    return jsonable_encoder(view)


@router.get("/{household_id}/enrolments", response_model=list[EnrolmentRead])
async def enrolment_history(household_id: UUID, conn: Conn, principal: Reader) -> list[dict[str, Any]]:
    """Every enrolment of the household, oldest first (replaced and withdrawn ones included)."""
    await readable_household(conn, household_id, principal)
    return [dict(r) for r in await store.enrolment_history(conn, household_id)]


@router.post("/{household_id}/conditions", status_code=201, response_model=ConditionRead)
async def record_condition(
    household_id: UUID, body: ConditionCreate, request: Request, runtime: RuntimeDep, principal: HealthStaff
) -> JSONResponse:
    """A PWYC condition verified by a health facility. Beyond its maximum (4 antenatal visits per
    pregnancy, 1 delivery per birth, 10 checks per child) it is recorded and rejected with a reason."""

    async def handle() -> JSONResponse:
        async with runtime.transaction() as conn:
            view = await service.record_condition(conn, household_id, body, context(request, principal))
        return JSONResponse(jsonable_encoder(ConditionRead.model_validate(view)), status_code=201)

    return await idempotent(request, principal, handle)


@router.get("/{household_id}/conditions", response_model=list[ConditionRead])
async def list_conditions(household_id: UUID, conn: Conn, principal: HealthStaff) -> list[dict[str, Any]]:
    return await service.conditions_view(conn, household_id)
