"""Programmes as eligibility sees them: beneficiaries and the coverage funnel."""

from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Query, Response
from fastapi.encoders import jsonable_encoder
from krousar_common.web import Conn

from eligibility import store, views
from eligibility.api.common import Reader

router = APIRouter(prefix="/v1", tags=["programmes"])
Period = Annotated[
    str | None,
    Query(pattern=r"^\d{4}-\d{2}(-\d{2})?$", description="YYYY-MM, or a top-up's payment date YYYY-MM-DD"),
]
Province = Annotated[str | None, Query(pattern=r"^\d{2}$")]
Commune = Annotated[str | None, Query(pattern=r"^\d{6}$")]


@router.get("/programmes")
async def list_programmes(conn: Conn, principal: Reader) -> list[dict[str, Any]]:
    """The programme versions eligibility decides for (the latest published version of each)."""
    return [
        {"code": p.code, "version": p.version, "kind": p.kind, "status": p.status, "title": p.title}
        for p in await store.load_programmes(conn)
    ]


@router.get("/programmes/{code}/beneficiaries")
async def beneficiaries(
    code: str,
    conn: Conn,
    principal: Reader,
    period: Period = None,
    province: Province = None,
    commune: Commune = None,
    cursor: UUID | None = Query(None, description="next_cursor of the previous page"),
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Any:
    """Eligible households of the programme (cursor pagination, by household id); commune staff
    see only their communes'."""
    principal.ensure_reads(province, commune)
    page = await views.beneficiaries(
        conn,
        code,
        period=period,
        province=province,
        commune=commune,
        within=principal.read_scope,
        cursor=cursor,
        limit=limit,
    )
    return jsonable_encoder(page)


@router.get("/coverage", responses={200: {"content": {"text/csv": {}}}})
async def coverage(
    conn: Conn,
    principal: Reader,
    programme: str,
    period: Period = None,
    province: Province = None,
    format: Literal["json", "csv"] = "json",
) -> Any:
    """The funnel registered → poor (card in force) → eligible (every rule but enrolment) → enrolled
    (payable) → instructed → paid (failed, unclaimed), by province, commune and sex of the household
    head; ``format=csv``: the national, province and commune rows as a spreadsheet."""
    report = await views.coverage(conn, programme, period=period, province=province)
    if format == "json":
        return jsonable_encoder(report)
    name = f"coverage-{programme}-{report['payment_key'] or 'none'}.csv"
    return Response(
        views.coverage_csv(report),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
