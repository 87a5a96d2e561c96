"""What the simulated PSP holds, for people watching a run settle."""

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter
from fastapi.encoders import jsonable_encoder
from krousar_common.auth import Principal, require_roles
from krousar_common.web import Conn

from psp_simulator import store

router = APIRouter(prefix="/v1", tags=["settlements"])
Reader = Annotated[Principal, require_roles("payment_operator", "payment_approver", "viewer")]


@router.get("/settlements/summary")
async def settlements_summary(conn: Conn, principal: Reader, run_id: UUID | None = None) -> dict[str, Any]:
    """Payments held by the simulator by outcome: how many, reported yet, riel, reported twice."""
    rows = await store.summary(conn, run_id)
    return jsonable_encoder({"run_id": run_id, "by_status": [dict(r) for r in rows]})
