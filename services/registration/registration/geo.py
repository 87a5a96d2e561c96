"""Gazetteer lookups for client apps and the village reclassification that registry admins make."""

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Request
from krousar_common.auth import Principal, require_roles
from krousar_common.errors import NotFound
from krousar_common.events.households import LocationCategory
from krousar_common.web import Conn, RuntimeDep
from pydantic import BaseModel, ConfigDict, Field

from registration import changes, service, store
from registration.domain import geography
from registration.snapshots import SINCE_ALWAYS

router = APIRouter(prefix="/v1/geo", tags=["geography"])
Admin = Annotated[Principal, require_roles("registry_admin")]
Reader = Annotated[
    Principal, require_roles("commune_staff", "registry_admin", "viewer", "health_staff", "programme_manager")
]


class Place(BaseModel):
    code: str
    name_km: str
    name_en: str


class ClassificationPeriod(BaseModel):
    effective_from: date
    category: LocationCategory
    reason: str | None = None
    decided_by: str | None = None


class VillageRead(Place):
    commune_code: str
    district_code: str
    province_code: str
    commune_unit: str
    location_category_today: LocationCategory
    classification_history: list[ClassificationPeriod]


class Reclassification(BaseModel):
    model_config = ConfigDict(extra="forbid")

    category: LocationCategory
    effective_from: date
    reason: str = Field(
        min_length=10, max_length=2000, examples=["Resettled village moved to the urban rate"]
    )


def _or_404(places: list[geography.Place] | None, what: str) -> list[geography.Place]:
    if places is None:
        raise NotFound(f"{what} not found in the 2025 gazetteer")
    return places


@router.get("/provinces", response_model=list[Place])
async def provinces(principal: Reader) -> list[geography.Place]:
    return geography.list_provinces()


@router.get("/provinces/{province_code}/districts", response_model=list[Place])
async def districts(province_code: str, principal: Reader) -> list[geography.Place]:
    return _or_404(geography.list_districts(province_code), f"province {province_code}")


@router.get("/districts/{district_code}/communes", response_model=list[Place])
async def communes(district_code: str, principal: Reader) -> list[geography.Place]:
    return _or_404(geography.list_communes(district_code), f"district {district_code}")


@router.get("/communes/{commune_code}/villages", response_model=list[Place])
async def villages(commune_code: str, principal: Reader) -> list[geography.Place]:
    return _or_404(geography.list_villages(commune_code), f"commune {commune_code}")


@router.get("/villages/{village_code}", response_model=VillageRead)
async def village(village_code: str, conn: Conn, principal: Reader) -> dict[str, Any]:
    """A village with its commune unit, today's location category and every reclassification."""
    found = geography.get_village(village_code)
    if found is None:
        raise NotFound(f"village {village_code} not found in the 2025 gazetteer")
    return await _village_view(conn, found)


@router.put("/villages/{village_code}/classification", response_model=VillageRead)
async def reclassify(
    village_code: str, body: Reclassification, request: Request, runtime: RuntimeDep, principal: Admin
) -> dict[str, Any]:
    """Reclassify one village from a date (e.g. a resettled village moved to the urban rate).

    Every active household of the village gets a new version and a ``HouseholdReclassified`` event.
    """
    found = service.resolve_village(village_code, field="village_code")
    ctx = service.Context(principal, request.state.correlation_id, request.app.state.settings)
    async with runtime.transaction() as conn:
        await changes.reclassify_village(
            conn, found.code, body.category, body.effective_from, body.reason, ctx
        )
        return await _village_view(conn, found)


async def _village_view(conn: Any, found: geography.Village) -> dict[str, Any]:
    unit = geography.commune_unit(found.commune_code, service.commune_units())
    base = geography.location_category(found.commune_code, service.commune_units())
    history = [{"effective_from": SINCE_ALWAYS, "category": base, "reason": f"commune is a {unit}"}]
    history += [dict(r) for r in await store.village_classifications(conn, found.code)]
    in_force = [h for h in history if h["effective_from"] <= date.today()]
    return {
        **found.__dict__,
        "commune_unit": unit,
        "location_category_today": in_force[-1]["category"],
        "classification_history": history,
    }
