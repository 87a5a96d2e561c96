"""Changes to a registered household: life events, member details, withdrawal, re-assessment,
council decisions, cards, expiry and village reclassification. Each checks the version it was
given (If-Match), writes its change, an audit row and its event together, and never commits."""

from datetime import date
from typing import Any
from uuid import UUID, uuid4

import asyncpg
from krousar_common.errors import Conflict, InvalidInput, NotFound, PreconditionFailed, validation_errors
from krousar_common.events import households as ev
from pydantic import ValidationError

from registration import service, store
from registration.domain import cards, scoring
from registration.models import MemberCreate, MemberUpdate

# --- changes to a registered household ---------------------------------------------------------


async def _lock_for_change(
    conn: asyncpg.Connection, household_id: UUID, expected_version: int, ctx: service.Context
) -> asyncpg.Record:
    row = await store.get_household(conn, household_id, for_update=True)
    if row is None:
        raise NotFound(f"household {household_id} not found")
    ctx.actor.ensure_commune(row["commune_code"])
    if row["version"] != expected_version:
        raise PreconditionFailed(
            f"household {household_id} is at version {row['version']}, not {expected_version}:"
            " reload and retry",
            current_version=row["version"],
        )
    if row["status"] != ev.HouseholdStatus.ACTIVE:
        raise Conflict(f"household {household_id} is withdrawn")
    return row


async def _commit_change(
    conn: asyncpg.Connection,
    household_id: UUID,
    ctx: service.Context,
    action: str,
    details: dict[str, Any],
    make_event: Any,
    *,
    issued_card: str | None = None,
    **household_changes: Any,
) -> int:
    """Bump the version, audit, and publish the change's event (and ``CardIssued`` for a new card:
    the same snapshot, so consumers that follow cards need not read every kind of change)."""
    version = await store.bump_version(conn, household_id, actor=ctx.actor.user_id, **household_changes)
    await service.audit(conn, household_id, action, ctx, version, details)
    snapshot = await service.load_snapshot(conn, household_id)
    await service.publish(conn, ctx, make_event(snapshot))
    if issued_card is not None:
        await service.publish(conn, ctx, ev.CardIssued(household=snapshot, card_number=issued_card))
    return version


async def add_member(
    conn: asyncpg.Connection,
    household_id: UUID,
    expected_version: int,
    member: MemberCreate,
    change: str,
    effective_on: date,
    ctx: service.Context,
) -> int:
    await _lock_for_change(conn, household_id, expected_version, ctx)
    if member.relationship == ev.Relationship.HEAD:
        raise InvalidInput(
            "a household has exactly one head; add the member with another relationship",
            field="member.relationship",
        )
    await service.reject_held_national_ids(conn, [member.national_id] if member.national_id else [])
    row = service.member_row(member, household_id, joined_on=effective_on, joined_reason=change)
    await service.insert_members(conn, [row])
    return await _commit_change(
        conn,
        household_id,
        ctx,
        f"MEMBER_{change}",
        {"member_id": str(row["member_id"]), "on": str(effective_on)},
        lambda s: ev.MemberAdded(
            household=s, member_id=row["member_id"], change=change, effective_on=effective_on
        ),
    )


async def remove_member(
    conn: asyncpg.Connection,
    household_id: UUID,
    expected_version: int,
    member_id: UUID,
    change: str,
    effective_on: date,
    new_head_member_id: UUID | None,
    ctx: service.Context,
) -> int:
    household = await _lock_for_change(conn, household_id, expected_version, ctx)
    members = {m["member_id"]: m for m in await store.get_members(conn, household_id)}
    _current_member_or_raise(members, household_id, member_id)
    changes: dict[str, Any] = {}
    if member_id == household["head_member_id"]:
        changes = await _hand_over_headship(conn, members, member_id, new_head_member_id)
    await store.update_member(conn, member_id, left_on=effective_on, left_reason=change, active=False)
    return await _commit_change(
        conn,
        household_id,
        ctx,
        f"MEMBER_{change}",
        {"member_id": str(member_id), "on": str(effective_on)},
        lambda s: ev.MemberRemoved(
            household=s, member_id=member_id, change=change, effective_on=effective_on
        ),
        **changes,
    )


def _current_member_or_raise(
    members: dict[UUID, asyncpg.Record], household_id: UUID, member_id: UUID
) -> asyncpg.Record:
    member = members.get(member_id)
    if member is None or member["left_on"] is not None:
        raise NotFound(f"member {member_id} is not a current member of household {household_id}")
    return member


async def change_member_details(
    conn: asyncpg.Connection,
    household_id: UUID,
    expected_version: int,
    member_id: UUID,
    update: MemberUpdate,
    ctx: service.Context,
) -> int:
    """Correct or update a member's details; the audit and the event name the fields, not values."""
    await _lock_for_change(conn, household_id, expected_version, ctx)
    members = {m["member_id"]: m for m in await store.get_members(conn, household_id)}
    member = _current_member_or_raise(members, household_id, member_id)
    changed = {k: v for k, v in update.changes().items() if member[k] != v}
    if not changed:
        raise InvalidInput("send at least one field that differs from the member's details", field="body")
    _check_member(dict(member) | changed)
    if changed.get("national_id"):
        await service.reject_held_national_ids(conn, [changed["national_id"]])
    try:
        await store.update_member(conn, member_id, **changed)
    except asyncpg.UniqueViolationError as exc:  # a registration raced us for the national ID
        raise Conflict("the national ID belongs to an active household", field="national_id") from exc
    fields = sorted(changed)
    return await _commit_change(
        conn,
        household_id,
        ctx,
        "MEMBER_CHANGED",
        {"member_id": str(member_id), "fields": fields, "on": str(update.effective_on)},
        lambda s: ev.MemberChanged(
            household=s, member_id=member_id, fields=fields, effective_on=update.effective_on
        ),
    )


def _check_member(details: dict[str, Any]) -> None:
    """Every rule a registered member meets (Khmer name, national ID format…) holds after a change."""
    try:
        MemberCreate.model_validate({f: details[f] for f in MemberCreate.model_fields})
    except ValidationError as exc:
        errors = validation_errors(exc.errors(include_input=False))
        raise InvalidInput("; ".join(f"{e['field']}: {e['message']}" for e in errors), errors=errors) from exc


async def _hand_over_headship(
    conn: asyncpg.Connection, members: dict[UUID, asyncpg.Record], leaving: UUID, new_head: UUID | None
) -> dict[str, Any]:
    successor = members.get(new_head) if new_head else None
    if successor is None or successor["left_on"] is not None or new_head == leaving:
        raise InvalidInput(
            "the head is leaving: name a current member as new_head_member_id", field="new_head_member_id"
        )
    await store.update_member(conn, leaving, relationship="OTHER_RELATIVE")
    await store.update_member(conn, new_head, relationship="HEAD")
    return {"head_member_id": new_head}


async def withdraw_household(
    conn: asyncpg.Connection, household_id: UUID, expected_version: int, reason: str, ctx: service.Context
) -> int:
    await _lock_for_change(conn, household_id, expected_version, ctx)
    card = await store.get_latest_card(conn, household_id)
    if card is not None and card["status"] == "ACTIVE":
        await store.set_card_status(
            conn, card["card_number"], "REVOKED", reason=f"household withdrawn: {reason}"
        )
    await store.deactivate_members(conn, household_id)
    return await _commit_change(
        conn,
        household_id,
        ctx,
        "WITHDRAWN",
        {"reason": reason},
        lambda s: ev.HouseholdWithdrawn(household=s, reason=reason),
        status="WITHDRAWN",
        withdrawn_reason=reason,
    )


# --- assessments and council decisions -----------------------------------------------------------


async def reassess(
    conn: asyncpg.Connection,
    household_id: UUID,
    expected_version: int,
    answers: dict[str, Any],
    interviewed_on: date,
    ctx: service.Context,
) -> int:
    household = await _lock_for_change(conn, household_id, expected_version, ctx)
    present = [
        scoring.MemberFacts(m["date_of_birth"], m["in_school"])
        for m in await store.get_members(conn, household_id)
        if m["left_on"] is None
    ]
    model = scoring.model_for_questionnaire(household["questionnaire"], interviewed_on)
    assessment = service.score(model, answers, present, interviewed_on)
    assessment_id = await service.insert_assessment(
        conn, household_id, assessment, answers, interviewed_on, ctx
    )
    card_number = await _renew_card(
        conn, household, assessment_id, assessment.model_level, interviewed_on, ctx
    )
    return await _commit_change(
        conn,
        household_id,
        ctx,
        "REASSESSED",
        {"score": assessment.score, "level": assessment.model_level, "card_number": card_number},
        lambda s: ev.HouseholdAssessed(
            household=s,
            assessment_id=assessment_id,
            score=assessment.score,
            scoring_model=assessment.model_id,
            model_level=assessment.model_level,
            final_level=assessment.model_level,
        ),
        issued_card=card_number,
        poverty_level=assessment.model_level,
        interviewed_on=interviewed_on,
    )


async def decide_special_circumstances(
    conn: asyncpg.Connection,
    household_id: UUID,
    expected_version: int,
    direction: str,
    reason: str,
    decided_on: date,
    ctx: service.Context,
) -> int:
    household = await _lock_for_change(conn, household_id, expected_version, ctx)
    latest = await store.get_latest_assessment(conn, household_id)
    try:
        final = scoring.apply_special_circumstances(latest["model_level"], direction)
    except ValueError as exc:
        raise InvalidInput(str(exc), field="direction") from exc
    assessment_id = uuid4()
    await store.insert_row(
        conn,
        "assessments",
        store.ASSESSMENT_COLUMNS,
        {
            **dict(latest),
            "assessment_id": assessment_id,
            "assessed_on": decided_on,
            "final_level": final,
            "adjustment": direction,
            "adjustment_reason": reason,
            "created_by": ctx.actor.user_id,
        },
    )
    card_number = await _renew_card(conn, household, assessment_id, final, decided_on, ctx)
    return await _commit_change(
        conn,
        household_id,
        ctx,
        "COUNCIL_DECISION",
        {"direction": direction, "reason": reason, "level": final, "card_number": card_number},
        lambda s: ev.HouseholdAssessed(
            household=s,
            assessment_id=assessment_id,
            score=latest["score"],
            scoring_model=latest["scoring_model"],
            model_level=latest["model_level"],
            final_level=final,
            special_circumstances_reason=reason,
        ),
        issued_card=card_number,
        poverty_level=final,
    )


async def _renew_card(
    conn: asyncpg.Connection,
    household: asyncpg.Record,
    assessment_id: UUID,
    level: str,
    issued_on: date,
    ctx: service.Context,
) -> str | None:
    """A new assessment ends the current card and, when the household is poor, issues a new one."""
    current = await store.get_latest_card(conn, household["household_id"])
    active = current if current is not None and current["status"] == "ACTIVE" else None
    if active is not None:
        not_poor = level == ev.PovertyLevel.NOT_POOR
        status, why = ("REVOKED", "re-assessed NOT_POOR") if not_poor else ("REPLACED", "re-assessment")
        await store.set_card_status(conn, active["card_number"], status, reason=why)
    new_number = await service.issue_card_if_poor(
        conn, household["household_id"], household["village_code"], assessment_id, level, issued_on, ctx
    )
    if active is not None and new_number is not None:
        await store.set_card_status(
            conn, active["card_number"], "REPLACED", reason="re-assessment", replaced_by=new_number
        )
    return new_number


# --- cards -----------------------------------------------------------------------------------------


async def revoke_card(
    conn: asyncpg.Connection, household_id: UUID, expected_version: int, reason: str, ctx: service.Context
) -> int:
    await _lock_for_change(conn, household_id, expected_version, ctx)
    card = await _active_card_or_raise(conn, household_id)
    await store.set_card_status(conn, card["card_number"], "REVOKED", reason=reason)
    return await _commit_change(
        conn,
        household_id,
        ctx,
        "CARD_REVOKED",
        {"card_number": card["card_number"], "reason": reason},
        lambda s: ev.CardRevoked(household=s, card_number=card["card_number"], reason=reason),
    )


async def replace_lost_card(
    conn: asyncpg.Connection,
    household_id: UUID,
    expected_version: int,
    reason: str,
    ctx: service.Context,
    today: date,
) -> int:
    household = await _lock_for_change(conn, household_id, expected_version, ctx)
    old = await _active_card_or_raise(conn, household_id)
    (seq,) = await store.next_card_seqs(conn, household["village_code"])
    number = cards.card_number(household["village_code"], seq)
    await store.set_card_status(conn, old["card_number"], "REPLACED", reason=reason)
    # A replacement is the same entitlement on a new card: the validity does not grow.
    await store.insert_row(
        conn,
        "cards",
        store.CARD_COLUMNS,
        {
            "card_number": number,
            "household_id": household_id,
            "assessment_id": old["assessment_id"],
            "status": "ACTIVE",
            "issued_on": min(today, old["valid_until"]),
            "valid_until": old["valid_until"],
        },
    )
    await store.set_card_status(conn, old["card_number"], "REPLACED", reason=reason, replaced_by=number)
    return await _commit_change(
        conn,
        household_id,
        ctx,
        "CARD_REPLACED",
        {"old": old["card_number"], "new": number, "reason": reason},
        lambda s: ev.CardReplaced(household=s, old_card_number=old["card_number"], card_number=number),
        issued_card=number,
    )


async def _active_card_or_raise(conn: asyncpg.Connection, household_id: UUID) -> asyncpg.Record:
    card = await store.get_latest_card(conn, household_id)
    if card is None or card["status"] != "ACTIVE":
        raise Conflict(f"household {household_id} has no ACTIVE card")
    return card


async def expire_cards(conn: asyncpg.Connection, on: date, ctx: service.Context) -> list[str]:
    """Expire every ACTIVE card whose last valid day is before ``on``; one event per card."""
    expired = []
    for card in await store.cards_due_to_expire(conn, on):
        await store.set_card_status(
            conn, card["card_number"], "EXPIRED", reason=f"validity ended before {on}"
        )
        number = card["card_number"]
        await _commit_change(
            conn,
            card["household_id"],
            ctx,
            "CARD_EXPIRED",
            {"card_number": number},
            lambda s, number=number: ev.CardExpired(household=s, card_number=number),
        )
        expired.append(number)
    return expired


async def reclassify_village(
    conn: asyncpg.Connection,
    village_code: str,
    category: str,
    effective_from: date,
    reason: str,
    ctx: service.Context,
) -> int:
    """Record the dated reclassification and re-publish every active household of the village."""
    await store.insert_village_classification(
        conn,
        village_code,
        effective_from=effective_from,
        category=category,
        reason=reason,
        by=ctx.actor.user_id,
    )
    household_ids = await store.active_household_ids_in_village(conn, village_code)
    for household_id in household_ids:
        await _commit_change(
            conn,
            household_id,
            ctx,
            "VILLAGE_RECLASSIFIED",
            {"category": category, "effective_from": str(effective_from), "reason": reason},
            lambda s: ev.HouseholdReclassified(
                household=s, village_code=village_code, category=category, effective_from=effective_from
            ),
        )
    return len(household_ids)


def find_card_number_problem(number: str) -> str | None:
    if not cards.is_valid_card_number(number):
        return f"{number!r} is not a valid equity card number (format VVVVVVVV-SSSSS-C, Luhn check digit)"
    return None
