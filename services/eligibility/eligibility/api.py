"""HTTP routes of eligibility."""

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter
from krousar_common.auth import Principal, require_roles
from krousar_common.errors import NotFound
from krousar_common.web import Conn

from eligibility import store

router = APIRouter(prefix="/v1", tags=["households"])
Reader = Annotated[Principal, require_roles("commune_staff", "registry_admin", "viewer", "health_staff")]


@router.get("/households/{household_id}")
async def get_household(household_id: UUID, conn: Conn, principal: Reader) -> dict[str, Any]:
    """The household as eligibility knows it (its projection of the registry's events)."""
    row = await store.get_household(conn, household_id)
    if row is None:
        raise NotFound(f"household {household_id} is not known to eligibility (yet)")
    return {"household_id": str(row["household_id"]), "version": row["version"], "snapshot": row["snapshot"]}
