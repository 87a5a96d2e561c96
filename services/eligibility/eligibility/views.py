"""Read use cases: a household's eligibility for any period with the arithmetic, the beneficiaries of
a programme, and the coverage funnel."""

import csv
import io
from collections.abc import Callable, Iterable, Sequence
from datetime import date
from typing import Any
from uuid import UUID

import asyncpg
from krousar_common.auth import Principal
from krousar_common.benefits import Component, Entitlement, PaymentLine
from krousar_common.errors import InvalidInput, NotFound
from krousar_common.programmes import ProgrammeStatus, ProgrammeVersion

from eligibility import domain, evaluation, store

HIV_READERS = ("registry_admin", "health_staff")  # DOMAIN §2: HIV status only for roles that need it
SCAN_CHUNK = 500
SCAN_LIMIT = 20_000  # households examined per page when beneficiaries are computed, not stored
FUNNEL_STAGES = (
    "registered",
    "poor",
    "eligible",
    "enrolled",
    "instructed",
    "paid",
    "failed",
    "unclaimed",
    "amount_riel",
)
NOWHERE = UUID(int=0)


async def programme_or_404(conn: asyncpg.Connection, code: str) -> ProgrammeVersion:
    found = await store.load_programmes(conn, [code])
    if not found:
        raise NotFound(f"programme {code} is not known to eligibility (yet)")
    return found[0]


def _terms(terms: Iterable[Any]) -> list[dict[str, Any]]:
    return [t._asdict() for t in terms]


def line_view(line: PaymentLine) -> dict[str, Any]:
    return {
        "component": line.component,
        "amount_riel": line.amount_riel,
        "explanation": line.explanation,
        "terms": _terms(line.terms),
    }


def entitlement_view(entitlement: Entitlement) -> dict[str, Any]:
    return {
        "event_id": entitlement.event_id,
        "kind": entitlement.kind,
        "occurred_on": entitlement.occurred_on,
        "amount_riel": entitlement.amount_riel,
        "explanation": entitlement.explanation,
        "terms": _terms(entitlement.terms),
    }


def decision_view(decision: domain.Decision, *, show_hiv: bool) -> dict[str, Any]:
    # The HIV component would tell who lives with HIV: other roles see the payment without it.
    lines = [line for line in decision.lines if show_hiv or line.component != Component.HIV]
    entitlements = [entitlement_view(e) for e in decision.entitlements]
    return {
        "payment_key": decision.payment_key,
        "eligible": decision.eligible,
        "reasons": list(decision.reasons),
        "amount_riel": sum(line.amount_riel for line in lines) + sum(e["amount_riel"] for e in entitlements),
        "lines": [line_view(line) for line in lines],
        "entitlements": entitlements,
    }


def payment_keys(programme: ProgrammeVersion, period: str | None, day: date) -> list[str]:
    if programme.status is not ProgrammeStatus.ACTIVE:
        return []
    if period is not None:
        return domain.payment_keys_in(programme, period)
    key = domain.payment_key_on(programme, day)
    return [] if key is None else [key]


def stored_view(row: asyncpg.Record | None) -> dict[str, Any] | None:
    if row is None:
        return None
    keys = (
        "programme_version",
        "payment_key",
        "eligible",
        "reasons",
        "amount_riel",
        "effective_on",
        "changed_at",
    )
    return {k: row[k] for k in keys}


async def household_eligibility(
    conn: asyncpg.Connection, household_id: UUID, *, period: str | None, on: date | None, principal: Principal
) -> dict[str, Any]:
    """Every programme: eligible or not and why, and what each payment of the period (or the current
    one on ``on``) would be, with the calculator's arithmetic; plus the decision in force."""
    rows = await store.household_rows(conn, [household_id])
    if not rows:
        raise NotFound(f"household {household_id} is not known to eligibility (yet)")
    programmes = await store.load_programmes(conn)
    (facts,) = await evaluation.load_facts(conn, rows, programmes)
    day = on or await evaluation.current_day(conn)
    stored = {r["programme_code"]: r for r in await store.decisions_of_household(conn, household_id)}
    show_hiv = principal.has_any(*HIV_READERS)
    views = []
    for programme in programmes:
        decisions = [
            domain.evaluate(
                programme, facts.household, facts.enrolment, key, conditions=facts.conditions, paid=facts.paid
            )
            for key in payment_keys(programme, period, day)
        ] or [domain.not_running(programme)]
        views.append(
            {
                "programme_code": programme.code,
                "programme_version": programme.version,
                "kind": programme.kind,
                "title": programme.title,
                "payments": [decision_view(d, show_hiv=show_hiv) for d in decisions],
                "decision_in_force": stored_view(stored.get(programme.code)),
            }
        )
    return {
        "household_id": household_id,
        "period": period,
        "on": None if period else day,
        "programmes": views,
    }


# --- beneficiaries ---------------------------------------------------------------------------------


def _matches(period: str, key: str) -> bool:
    return key == period or key.startswith(period + "-")


def _key_of(programme: ProgrammeVersion, period: str) -> str:
    try:
        keys = (
            domain.payment_keys_in(programme, period)
            if len(period) == 7
            else [programme.payment_key(period)[0]]
        )
    except ValueError as exc:
        raise InvalidInput(str(exc), field="period") from exc
    if not keys:
        raise InvalidInput(f"{programme.code} pays nothing in {period}", field="period")
    return keys[0]


async def beneficiaries(
    conn: asyncpg.Connection,
    code: str,
    *,
    period: str | None,
    province: str | None,
    commune: str | None,
    within: frozenset[str] | None,
    cursor: UUID | None,
    limit: int,
) -> dict[str, Any]:
    """Eligible (payable) households, ordered by id, in ``within`` (commune and province codes;
    None: anywhere); ``next_cursor`` continues the list.

    For the current payment they come from the decisions in force; for another period they are
    decided on the fly, examining at most ``SCAN_LIMIT`` households per page.
    """
    programme = await programme_or_404(conn, code)
    stored_keys = await store.payment_keys_of(conn, code)
    if period is None or any(_matches(period, k) for k in stored_keys):
        rows = await store.beneficiaries(
            conn,
            code,
            province=province,
            commune=commune,
            within=within,
            after=cursor or NOWHERE,
            limit=limit,
        )
        next_cursor = rows[-1]["household_id"] if len(rows) == limit else None
        return {
            "programme_code": code,
            "source": "decisions",
            "items": [dict(r) for r in rows],
            "next_cursor": next_cursor,
        }
    key = _key_of(programme, period)
    items, next_cursor = await _decide_page(
        conn, programme, key, province, commune, within, cursor or NOWHERE, limit
    )
    return {
        "programme_code": code,
        "source": f"computed for {key}",
        "items": items,
        "next_cursor": next_cursor,
    }


async def _decide_page(
    conn: asyncpg.Connection,
    programme: ProgrammeVersion,
    key: str,
    province: str | None,
    commune: str | None,
    within: frozenset[str] | None,
    after: UUID,
    limit: int,
) -> tuple[list[dict[str, Any]], UUID | None]:
    items: list[dict[str, Any]] = []
    for _ in range(SCAN_LIMIT // SCAN_CHUNK):
        ids = await store.household_ids_in_area(
            conn, province=province, commune=commune, within=within, after=after, limit=SCAN_CHUNK
        )
        if not ids:
            return items, None
        for facts in await evaluation.load_facts(conn, await store.household_rows(conn, ids), [programme]):
            after = facts.household.household_id
            decision = domain.evaluate(
                programme, facts.household, facts.enrolment, key, conditions=facts.conditions, paid=facts.paid
            )
            if decision.eligible:
                items.append(_beneficiary(facts, decision, programme))
                if len(items) == limit:
                    return items, after
    return items, after


def _beneficiary(
    facts: evaluation.Facts, decision: domain.Decision, programme: ProgrammeVersion
) -> dict[str, Any]:
    household = facts.household
    day = programme.calendar.first_day(decision.payment_key or "")
    return {
        "household_id": household.household_id,
        "payment_key": decision.payment_key,
        "amount_riel": decision.amount_riel,
        "programme_version": programme.version,
        "province_code": household.province_code,
        "district_code": household.district_code,
        "commune_code": household.commune_code,
        "village_code": household.village_code,
        "poverty_level": household.poverty_level,
        "female_headed": household.female_headed,
        "members": len(household.members_on(day)),
    }


# --- coverage --------------------------------------------------------------------------------------


def funnel(rows: Sequence[asyncpg.Record], key: Callable[[asyncpg.Record], Any]) -> dict[Any, dict[str, int]]:
    groups: dict[Any, dict[str, int]] = {}
    for row in rows:
        group = groups.setdefault(key(row), dict.fromkeys(FUNNEL_STAGES, 0))
        for stage in FUNNEL_STAGES:
            group[stage] += row[stage]
    return groups


async def current_payment(
    conn: asyncpg.Connection, programme: ProgrammeVersion, period: str | None = None
) -> tuple[str | None, date]:
    """The payment the funnel is kept for (the earliest one decisions are made for; None when the
    programme is not running) and its first day. ``period`` picks one of them (YYYY-MM or a date)."""
    keys = sorted(await store.payment_keys_of(conn, programme.code))
    if period is not None and not any(_matches(period, k) for k in keys):
        current = ", ".join(keys) or "none: the programme is not running"
        raise InvalidInput(
            f"coverage is kept for {programme.code}'s current payment ({current}); to see another day,"
            " hold the clock there with POST /v1/evaluations",
            field="period",
        )
    keys = [k for k in keys if period is None or _matches(period, k)]
    if not keys:
        return None, await evaluation.current_day(conn)
    return keys[0], programme.calendar.first_day(keys[0])


async def coverage(
    conn: asyncpg.Connection, code: str, *, period: str | None, province: str | None
) -> dict[str, Any]:
    """registered → poor (card in force) → eligible (every rule but enrolment) → enrolled (payable)
    → instructed → paid (failed, unclaimed) for the programme's current payment, by province,
    commune and sex of the head."""
    programme = await programme_or_404(conn, code)
    key, day = await current_payment(conn, programme, period)
    rows = await store.coverage(conn, code, key, day, province)
    return {
        "programme_code": code,
        "payment_key": key,
        "first_day": day,
        "totals": funnel(rows, lambda _: "all").get("all", dict.fromkeys(FUNNEL_STAGES, 0)),
        "by_province": [
            {"province_code": k, **v} for k, v in sorted(funnel(rows, lambda r: r["province_code"]).items())
        ],
        "by_commune": [
            {"commune_code": k, **v} for k, v in sorted(funnel(rows, lambda r: r["commune_code"]).items())
        ],
        "by_head_sex": [
            {"head_sex": "F" if k else "M", **v}
            for k, v in sorted(funnel(rows, lambda r: r["female_headed"]).items())
        ],
    }


COVERAGE_CSV_COLUMNS = ("programme_code", "payment_key", "level", "province_code", "commune_code")


def coverage_csv(report: dict[str, Any]) -> str:
    """The funnel as CSV: the national total, then one row per province, then per commune (whose
    first two digits are its province)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*COVERAGE_CSV_COLUMNS, *FUNNEL_STAGES])
    head = [report["programme_code"], report["payment_key"] or ""]
    rows = [("national", "", "", report["totals"])]
    rows += [("province", p["province_code"], "", p) for p in report["by_province"]]
    rows += [("commune", c["commune_code"][:2], c["commune_code"], c) for c in report["by_commune"]]
    for level, province, commune, stages in rows:
        writer.writerow([*head, level, province, commune, *(stages[s] for s in FUNNEL_STAGES)])
    return out.getvalue()
