"""HTTP routes of the registry: parse, check the role, call service.py, shape the answer."""

from datetime import date
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from krousar_common.auth import Principal, require_roles
from krousar_common.errors import InvalidInput, NotFound, PreconditionRequired
from krousar_common.events.households import CardStatus, PovertyLevel
from krousar_common.idempotency import idempotent
from krousar_common.web import Conn, RuntimeDep

from registration import changes, service, store
from registration.models import (
    AuditEntry,
    CardAction,
    CardLookup,
    CouncilDecision,
    HouseholdCreate,
    HouseholdPage,
    HouseholdRead,
    MemberChange,
    MemberLeaving,
    MemberUpdate,
    Reassessment,
    Withdrawal,
)

router = APIRouter(prefix="/v1", tags=["households"])

Writer = Annotated[Principal, require_roles("commune_staff", "registry_admin")]
Admin = Annotated[Principal, require_roles("registry_admin")]
Reader = Annotated[Principal, require_roles("commune_staff", "registry_admin", "viewer", "health_staff")]
IfMatch = Annotated[
    str | None, Header(description='The household version you read, e.g. "3" (from its ETag).')
]
HIV_READERS = ("registry_admin", "health_staff")


def context(request: Request, principal: Principal) -> service.Context:
    return service.Context(principal, request.state.correlation_id, request.app.state.settings)


def expected_version(if_match: str | None) -> int:
    if if_match is None:
        raise PreconditionRequired("If-Match header required: send the household's ETag", field="If-Match")
    try:
        return int(if_match.strip().removeprefix("W/").strip('"'))
    except ValueError as exc:
        raise InvalidInput(
            f'If-Match must be a household version such as "3", got {if_match!r}', field="If-Match"
        ) from exc


def household_read(view: dict[str, Any], principal: Principal) -> HouseholdRead:
    read = HouseholdRead.model_validate(view)
    if not principal.has_any(*HIV_READERS):  # legally sensitive: only roles that need it see it
        for member in read.members:
            member.lives_with_hiv = None
    return read


def household_body(view: dict[str, Any], principal: Principal) -> dict[str, Any]:
    return household_read(view, principal).model_dump(mode="json")


def household_response(view: dict[str, Any], principal: Principal, status: int = 200) -> Response:
    headers = {"ETag": f'"{view["version"]}"'}
    if status == 201:
        headers["Location"] = f"/v1/households/{view['household_id']}"
    # JSON written by pydantic directly: half the cost of a dict dump rendered by json.dumps.
    body = household_read(view, principal).model_dump_json()
    return Response(body, status_code=status, headers=headers, media_type="application/json")


@router.post(
    "/households",
    status_code=201,
    response_model=HouseholdRead,
    responses={409: {"description": "national ID held by another active household"}},
)
async def register_household(
    body: HouseholdCreate, request: Request, runtime: RuntimeDep, principal: Writer
) -> Response:
    """Register a household with its members and questionnaire answers: scored, levelled, carded."""

    async def handle() -> Response:
        async with runtime.transaction() as conn:
            view = await service.register_household(conn, body, context(request, principal))
        return household_response(view, principal, 201)

    return await idempotent(request, principal, handle)


async def readable_view(conn: Conn, household_id: UUID, principal: Principal) -> dict[str, Any]:
    view = await service.get_household_view(conn, household_id)
    principal.ensure_reads(view["commune_code"])
    return view


@router.get("/households/{household_id}", response_model=HouseholdRead)
async def get_household(household_id: UUID, conn: Conn, principal: Reader) -> Response:
    return household_response(await readable_view(conn, household_id, principal), principal)


@router.get("/households", response_model=HouseholdPage)
async def list_households(
    conn: Conn,
    principal: Reader,
    village: Annotated[str | None, Query(pattern=r"^[0-9]{8}$")] = None,
    commune: Annotated[str | None, Query(pattern=r"^[0-9]{6}$")] = None,
    district: Annotated[str | None, Query(pattern=r"^[0-9]{4}$")] = None,
    province: Annotated[str | None, Query(pattern=r"^[0-9]{2}$")] = None,
    level: PovertyLevel | None = None,
    card_status: CardStatus | None = None,
    cursor: UUID | None = Query(None, description="next_cursor of the previous page"),
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> dict[str, Any]:
    filters = {
        "village_code": village,
        "commune_code": commune,
        "district_code": district,
        "province_code": province,
        "poverty_level": level,
    }
    principal.ensure_reads(village, commune, district, province)
    views = await service.list_household_views(
        conn,
        filters={k: v for k, v in filters.items() if v is not None},
        within=principal.read_scope,
        card_status=card_status,
        after=cursor,
        limit=limit,
    )
    next_cursor = str(views[-1]["household_id"]) if len(views) == limit else None
    return {"items": [household_body(v, principal) for v in views], "next_cursor": next_cursor}


@router.get("/households/{household_id}/history", response_model=list[AuditEntry])
async def household_history(household_id: UUID, conn: Conn, principal: Reader) -> list[dict[str, Any]]:
    """Every write to the household: what, who, when, and the version it produced."""
    await readable_view(conn, household_id, principal)  # 404 for an unknown household

    return [dict(r) for r in await store.get_audit(conn, household_id)]


async def _change(
    request: Request, runtime: RuntimeDep, principal: Principal, household_id: UUID, apply: Any
) -> Response:
    async def handle() -> Response:
        async with runtime.transaction() as conn:
            await apply(conn, context(request, principal))
            view = await service.get_household_view(conn, household_id)
        return household_response(view, principal)

    return await idempotent(request, principal, handle)


def _member_added_route(path: str, change: str, summary: str) -> None:
    @router.post(
        f"/households/{{household_id}}/{path}",
        response_model=HouseholdRead,
        summary=summary,
        name=f"record_{path.replace('-', '_')}",
    )
    async def record(
        household_id: UUID,
        body: MemberChange,
        request: Request,
        runtime: RuntimeDep,
        principal: Writer,
        if_match: IfMatch = None,
    ) -> Response:
        version = expected_version(if_match)
        return await _change(
            request,
            runtime,
            principal,
            household_id,
            lambda conn, ctx: changes.add_member(
                conn, household_id, version, body.member, change, body.effective_on, ctx
            ),
        )


def _member_removed_route(path: str, change: str, summary: str) -> None:
    @router.post(
        f"/households/{{household_id}}/{path}",
        response_model=HouseholdRead,
        summary=summary,
        name=f"record_{path.replace('-', '_')}",
    )
    async def record(
        household_id: UUID,
        body: MemberLeaving,
        request: Request,
        runtime: RuntimeDep,
        principal: Writer,
        if_match: IfMatch = None,
    ) -> Response:
        version = expected_version(if_match)
        return await _change(
            request,
            runtime,
            principal,
            household_id,
            lambda conn, ctx: changes.remove_member(
                conn,
                household_id,
                version,
                body.member_id,
                change,
                body.effective_on,
                body.new_head_member_id,
                ctx,
            ),
        )


_member_added_route("births", "BIRTH", "Record a birth (adds the child)")
_member_added_route("moves-in", "MOVED_IN", "Record a member moving in")
_member_added_route("marriages", "MARRIAGE", "Record a marriage that brings a spouse into the household")
_member_removed_route("deaths", "DEATH", "Record a death")
_member_removed_route("moves-out", "MOVED_OUT", "Record a member moving out (including marrying out)")


@router.patch("/households/{household_id}/members/{member_id}", response_model=HouseholdRead)
async def change_member(
    household_id: UUID,
    member_id: UUID,
    body: MemberUpdate,
    request: Request,
    runtime: RuntimeDep,
    principal: Writer,
    if_match: IfMatch = None,
) -> Response:
    """Change a current member's details: only the fields sent change (null clears an optional one)."""
    version = expected_version(if_match)
    return await _change(
        request,
        runtime,
        principal,
        household_id,
        lambda conn, ctx: changes.change_member_details(conn, household_id, version, member_id, body, ctx),
    )


@router.post("/households/{household_id}/withdrawal", response_model=HouseholdRead)
async def withdraw(
    household_id: UUID,
    body: Withdrawal,
    request: Request,
    runtime: RuntimeDep,
    principal: Writer,
    if_match: IfMatch = None,
) -> Response:
    """Withdraw the household from the registry (a status: nothing is deleted)."""
    version = expected_version(if_match)
    return await _change(
        request,
        runtime,
        principal,
        household_id,
        lambda conn, ctx: changes.withdraw_household(conn, household_id, version, body.reason, ctx),
    )


@router.post("/households/{household_id}/assessments", response_model=HouseholdRead)
async def reassess(
    household_id: UUID,
    body: Reassessment,
    request: Request,
    runtime: RuntimeDep,
    principal: Writer,
    if_match: IfMatch = None,
) -> Response:
    """Re-assess with new answers: a new assessment (the old ones stay) and a new card if poor."""
    version = expected_version(if_match)
    return await _change(
        request,
        runtime,
        principal,
        household_id,
        lambda conn, ctx: changes.reassess(
            conn, household_id, version, body.answers, body.interviewed_on, ctx
        ),
    )


@router.post("/households/{household_id}/council-decisions", response_model=HouseholdRead)
async def council_decision(
    household_id: UUID,
    body: CouncilDecision,
    request: Request,
    runtime: RuntimeDep,
    principal: Writer,
    if_match: IfMatch = None,
) -> Response:
    """Special circumstances: the commune council moves the level one step, with a written reason."""
    version = expected_version(if_match)
    return await _change(
        request,
        runtime,
        principal,
        household_id,
        lambda conn, ctx: changes.decide_special_circumstances(
            conn, household_id, version, body.direction, body.reason, body.decided_on, ctx
        ),
    )


@router.post("/households/{household_id}/card/revocation", response_model=HouseholdRead, tags=["cards"])
async def revoke_card(
    household_id: UUID,
    body: CardAction,
    request: Request,
    runtime: RuntimeDep,
    principal: Admin,
    if_match: IfMatch = None,
) -> Response:
    version = expected_version(if_match)
    return await _change(
        request,
        runtime,
        principal,
        household_id,
        lambda conn, ctx: changes.revoke_card(conn, household_id, version, body.reason, ctx),
    )


@router.post("/households/{household_id}/card/replacement", response_model=HouseholdRead, tags=["cards"])
async def replace_card(
    household_id: UUID,
    body: CardAction,
    request: Request,
    runtime: RuntimeDep,
    principal: Writer,
    if_match: IfMatch = None,
) -> Response:
    """Replace a lost card: a new number, the old card REPLACED, the same validity."""
    version = expected_version(if_match)
    return await _change(
        request,
        runtime,
        principal,
        household_id,
        lambda conn, ctx: changes.replace_lost_card(
            conn, household_id, version, body.reason, ctx, date.today()
        ),
    )


@router.get("/cards/{card_number}", response_model=CardLookup, tags=["cards"])
async def get_card(card_number: str, conn: Conn, principal: Reader) -> dict[str, Any]:
    """Look a card up by number; the check digit is validated before any lookup."""
    problem = changes.find_card_number_problem(card_number)
    if problem:
        raise InvalidInput(problem, field="card_number")

    card = await store.get_card(conn, card_number)
    if card is None:
        raise NotFound(f"card {card_number} not found")
    await readable_view(conn, card["household_id"], principal)
    return {**dict(card), "household_id": str(card["household_id"])}


@router.post("/cards/expiry", tags=["cards"])
async def expire_cards(
    request: Request,
    runtime: RuntimeDep,
    principal: Admin,
    on: Annotated[date | None, Query(description="default: today")] = None,
) -> JSONResponse:
    """Run the daily expiry job for a date: every ACTIVE card past its validity becomes EXPIRED."""
    day = on or date.today()

    async def handle() -> JSONResponse:
        async with runtime.transaction() as conn:
            expired = await changes.expire_cards(conn, day, context(request, principal))
        body = {"on": day, "expired": len(expired), "card_numbers": expired[:1000]}
        return JSONResponse(jsonable_encoder(body))

    return await idempotent(request, principal, handle)


@router.get("/duplicates", tags=["households"])
async def possible_duplicates(
    conn: Conn, principal: Reader, commune: Annotated[str, Query(pattern=r"^[0-9]{6}$")]
) -> list[dict[str, Any]]:
    """Households flagged possible_duplicate (same head name, birth date and village) for review."""
    principal.ensure_reads(commune)
    return jsonable_encoder([dict(r) for r in await store.possible_duplicates(conn, commune)])
