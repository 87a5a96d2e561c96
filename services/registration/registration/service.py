"""Use cases of the registry. Each takes a connection inside the caller's transaction, writes
its state change, an audit row and its event (outbox) together, and never commits."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any
from uuid import UUID, uuid4

import asyncpg
from krousar_common import outbox, topics
from krousar_common.auth import Principal
from krousar_common.errors import Conflict, InvalidInput, NotFound, PreconditionFailed
from krousar_common.events import envelope_of, make_envelope
from krousar_common.events import households as ev
from pydantic import BaseModel

from registration import store
from registration.config import Settings
from registration.domain import cards, geography, scoring
from registration.models import HouseholdCreate, MemberCreate
from registration.snapshots import commune_units, snapshot_data, snapshot_from_rows

SOURCE = "krousar/registration"


@dataclass(frozen=True)
class Context:
    actor: Principal
    correlation_id: str
    settings: Settings


def resolve_village(raw_code: str, field: str = "village_code") -> geography.Village:
    try:
        code = geography.normalise_village_code(raw_code)
    except geography.InvalidCodeError as exc:
        raise InvalidInput(str(exc), field=field) from exc
    village = geography.get_village(code)
    if village is None:
        raise InvalidInput(f"village {code} is not in the 2025 gazetteer", field=field)
    return village


# --- registration ----------------------------------------------------------------------------


@dataclass
class Registration:
    """Every row that registering one household writes, planned before anything is written."""

    household: dict[str, Any]
    members: list[dict[str, Any]]
    assessment: dict[str, Any]
    card: dict[str, Any] | None
    audit: dict[str, Any]


def score_command(command: HouseholdCreate, village: geography.Village) -> scoring.Assessment:
    unit = geography.commune_unit(village.commune_code, commune_units())
    model = scoring.model_for_questionnaire(geography.questionnaire_for(unit), command.interviewed_on)
    return _score(model, command.answers, command.members, command.interviewed_on)


def plan_registration(
    command: HouseholdCreate,
    village: geography.Village,
    assessment: scoring.Assessment,
    *,
    actor: str,
    possible_duplicate: bool,
    card_number: str | None,
    card_valid_years: int,
) -> Registration:
    household_id, assessment_id = uuid4(), uuid4()
    members = [_member_row(m, household_id) for m in command.members]
    head = next(m for m in members if m["relationship"] == "HEAD")
    household = {
        "household_id": household_id,
        "village_code": village.code,
        "commune_code": village.commune_code,
        "district_code": village.district_code,
        "province_code": village.province_code,
        "interviewed_on": command.interviewed_on,
        "identification_mode": command.identification_mode,
        "round_no": command.round_no,
        "questionnaire": scoring.load_model(assessment.model_id).questionnaire,
        "possible_duplicate": possible_duplicate,
        "head_member_id": head["member_id"],
        "poverty_level": assessment.model_level,
        "registered_by": actor,
        "updated_by": actor,
        "status": "ACTIVE",
        "version": 1,
    }
    assessment_row = {
        "assessment_id": assessment_id,
        "household_id": household_id,
        "assessed_on": command.interviewed_on,
        "scoring_model": assessment.model_id,
        "score": assessment.score,
        "model_level": assessment.model_level,
        "final_level": assessment.model_level,
        "items": items_of(assessment),
        "answers": command.answers,
        "adjustment": None,
        "adjustment_reason": None,
        "created_by": actor,
    }
    card = (
        None
        if card_number is None
        else {
            "card_number": card_number,
            "household_id": household_id,
            "assessment_id": assessment_id,
            "status": "ACTIVE",
            "issued_on": command.interviewed_on,
            "valid_until": cards.valid_until(command.interviewed_on, card_valid_years),
        }
    )
    audit = {
        "household_id": household_id,
        "action": "REGISTERED",
        "actor": actor,
        "version": 1,
        "details": {
            "score": assessment.score,
            "level": assessment.model_level,
            "card_number": card_number,
            "possible_duplicate": possible_duplicate,
        },
    }
    return Registration(household, members, assessment_row, card, audit)


def is_poor(level: str) -> bool:
    return level != ev.PovertyLevel.NOT_POOR


async def register_household(
    conn: asyncpg.Connection, command: HouseholdCreate, ctx: Context
) -> dict[str, Any]:
    """Register, score and card a household; returns it as the API shows it."""
    village = resolve_village(command.village_code)
    ctx.actor.ensure_commune(village.commune_code)
    await _reject_held_national_ids(conn, [m.national_id for m in command.members if m.national_id])
    assessment = score_command(command, village)
    head = next(m for m in command.members if m.relationship == ev.Relationship.HEAD)
    duplicate = await store.head_with_same_identity_exists(
        conn, name_km=head.name_km, date_of_birth=head.date_of_birth, village_code=village.code
    )
    card_number = None
    if is_poor(assessment.model_level):
        (seq,) = await store.next_card_seqs(conn, village.code)
        card_number = cards.card_number(village.code, seq)
    plan = plan_registration(
        command,
        village,
        assessment,
        actor=ctx.actor.user_id,
        possible_duplicate=duplicate,
        card_number=card_number,
        card_valid_years=ctx.settings.card_valid_years,
    )
    times = await store.insert_returning(
        conn, "households", store.HOUSEHOLD_COLUMNS, plan.household, "registered_at, updated_at"
    )
    await _insert_members(conn, plan.members)
    created = await store.insert_returning(
        conn, "assessments", store.ASSESSMENT_COLUMNS, plan.assessment, "created_at"
    )
    if plan.card is not None:
        await store.insert_row(conn, "cards", store.CARD_COLUMNS, plan.card)
    await store.insert_row(conn, "audit_log", store.AUDIT_COLUMNS, plan.audit)
    household = {**plan.household, **times}
    assessment_row = {**plan.assessment, **created}
    reclassified = await store.village_classifications(conn, village.code)
    data = snapshot_data(household, plan.members, assessment_row, plan.card, reclassified)
    envelope = envelope_of(
        ev.HouseholdRegistered,
        {"household": data},
        source=SOURCE,
        subject=str(data["household_id"]),
        correlation_id=ctx.correlation_id,
    )
    await outbox.enqueue(conn, topic=ctx.settings.topic(topics.HOUSEHOLDS.name), envelope=envelope)
    return view_of(household, plan.members, assessment_row, plan.card, reclassified)


async def _reject_held_national_ids(conn: asyncpg.Connection, national_ids: list[str]) -> None:
    if not national_ids:
        return
    held = await store.households_holding_national_ids(conn, national_ids)
    if held:
        national_id, other = next(iter(held.items()))
        raise Conflict(
            f"national ID {national_id} already belongs to a member of active household {other}",
            field="members.national_id",
            other_household_id=str(other),
        )


def _score(
    model: scoring.ScoringModel,
    answers: dict[str, Any],
    members: Sequence[scoring.Member],
    interviewed_on: date,
) -> scoring.Assessment:
    present = [m for m in members if m.date_of_birth <= interviewed_on]
    try:
        return scoring.score_household(model, answers, present, interviewed_on)
    except scoring.InvalidAnswersError as exc:
        errors = [{"field": f"answers.{field}", "message": message} for field, message in exc.errors]
        raise InvalidInput(f"invalid questionnaire answers: {exc}", errors=errors) from exc


def _member_row(member: MemberCreate, household_id: UUID, **extra: Any) -> dict[str, Any]:
    row = member.model_dump()
    row.update(
        member_id=uuid4(),
        household_id=household_id,
        active=True,
        joined_on=None,
        joined_reason=None,
        left_on=None,
        left_reason=None,
    )
    row.update(extra)
    return row


async def _insert_members(conn: asyncpg.Connection, members: list[dict[str, Any]]) -> None:
    try:
        await store.insert_members(conn, members)
    except asyncpg.UniqueViolationError as exc:
        # Two registrations raced for one national ID: the partial unique index decided.
        raise Conflict(
            "a national ID of this household already belongs to an active household",
            field="members.national_id",
        ) from exc


async def _insert_assessment(
    conn: asyncpg.Connection,
    household_id: UUID,
    assessment: scoring.Assessment,
    answers: dict[str, Any],
    assessed_on: date,
    ctx: Context,
    *,
    final_level: str | None = None,
    adjustment: str | None = None,
    reason: str | None = None,
) -> UUID:
    assessment_id = uuid4()
    await store.insert_row(
        conn,
        "assessments",
        store.ASSESSMENT_COLUMNS,
        {
            "assessment_id": assessment_id,
            "household_id": household_id,
            "assessed_on": assessed_on,
            "scoring_model": assessment.model_id,
            "score": assessment.score,
            "model_level": assessment.model_level,
            "final_level": final_level or assessment.model_level,
            "items": items_of(assessment),
            "answers": answers,
            "adjustment": adjustment,
            "adjustment_reason": reason,
            "created_by": ctx.actor.user_id,
        },
    )
    return assessment_id


def items_of(assessment: scoring.Assessment) -> list[dict[str, Any]]:
    return [{"item": i.item, "value": i.value, "points": i.points} for i in assessment.items]


async def _issue_card_if_poor(
    conn: asyncpg.Connection,
    household_id: UUID,
    village_code: str,
    assessment_id: UUID,
    level: str,
    issued_on: date,
    ctx: Context,
) -> str | None:
    if level == ev.PovertyLevel.NOT_POOR:
        return None
    (seq,) = await store.next_card_seqs(conn, village_code)
    number = cards.card_number(village_code, seq)
    await store.insert_row(
        conn,
        "cards",
        store.CARD_COLUMNS,
        {
            "card_number": number,
            "household_id": household_id,
            "assessment_id": assessment_id,
            "status": "ACTIVE",
            "issued_on": issued_on,
            "valid_until": cards.valid_until(issued_on, ctx.settings.card_valid_years),
        },
    )
    return number


# --- changes to a registered household ---------------------------------------------------------


async def _lock_for_change(
    conn: asyncpg.Connection, household_id: UUID, expected_version: int, ctx: Context
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
    ctx: Context,
    action: str,
    details: dict[str, Any],
    make_event: Any,
    **household_changes: Any,
) -> int:
    version = await store.bump_version(conn, household_id, actor=ctx.actor.user_id, **household_changes)
    await _audit(conn, household_id, action, ctx, version, details)
    await _publish(conn, ctx, make_event(await load_snapshot(conn, household_id)))
    return version


async def add_member(
    conn: asyncpg.Connection,
    household_id: UUID,
    expected_version: int,
    member: MemberCreate,
    change: str,
    effective_on: date,
    ctx: Context,
) -> int:
    await _lock_for_change(conn, household_id, expected_version, ctx)
    if member.relationship == ev.Relationship.HEAD:
        raise InvalidInput(
            "a household has exactly one head; add the member with another relationship",
            field="member.relationship",
        )
    await _reject_held_national_ids(conn, [member.national_id] if member.national_id else [])
    row = _member_row(member, household_id, joined_on=effective_on, joined_reason=change)
    await _insert_members(conn, [row])
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
    ctx: Context,
) -> int:
    household = await _lock_for_change(conn, household_id, expected_version, ctx)
    members = {m["member_id"]: m for m in await store.get_members(conn, household_id)}
    member = members.get(member_id)
    if member is None or member["left_on"] is not None:
        raise NotFound(f"member {member_id} is not a current member of household {household_id}")
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
    conn: asyncpg.Connection, household_id: UUID, expected_version: int, reason: str, ctx: Context
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
    ctx: Context,
) -> int:
    household = await _lock_for_change(conn, household_id, expected_version, ctx)
    present = [
        scoring.MemberFacts(m["date_of_birth"], m["in_school"])
        for m in await store.get_members(conn, household_id)
        if m["left_on"] is None
    ]
    model = scoring.model_for_questionnaire(household["questionnaire"], interviewed_on)
    assessment = _score(model, answers, present, interviewed_on)
    assessment_id = await _insert_assessment(conn, household_id, assessment, answers, interviewed_on, ctx)
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
    ctx: Context,
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
        poverty_level=final,
    )


async def _renew_card(
    conn: asyncpg.Connection,
    household: asyncpg.Record,
    assessment_id: UUID,
    level: str,
    issued_on: date,
    ctx: Context,
) -> str | None:
    """A new assessment ends the current card and, when the household is poor, issues a new one."""
    current = await store.get_latest_card(conn, household["household_id"])
    active = current if current is not None and current["status"] == "ACTIVE" else None
    if active is not None:
        not_poor = level == ev.PovertyLevel.NOT_POOR
        status, why = ("REVOKED", "re-assessed NOT_POOR") if not_poor else ("REPLACED", "re-assessment")
        await store.set_card_status(conn, active["card_number"], status, reason=why)
    new_number = await _issue_card_if_poor(
        conn, household["household_id"], household["village_code"], assessment_id, level, issued_on, ctx
    )
    if active is not None and new_number is not None:
        await store.set_card_status(
            conn, active["card_number"], "REPLACED", reason="re-assessment", replaced_by=new_number
        )
    return new_number


# --- cards -----------------------------------------------------------------------------------------


async def revoke_card(
    conn: asyncpg.Connection, household_id: UUID, expected_version: int, reason: str, ctx: Context
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
    ctx: Context,
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
    )


async def _active_card_or_raise(conn: asyncpg.Connection, household_id: UUID) -> asyncpg.Record:
    card = await store.get_latest_card(conn, household_id)
    if card is None or card["status"] != "ACTIVE":
        raise Conflict(f"household {household_id} has no ACTIVE card")
    return card


async def expire_cards(conn: asyncpg.Connection, on: date, ctx: Context) -> list[str]:
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
    ctx: Context,
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


# --- reading ---------------------------------------------------------------------------------------


async def load_snapshot(conn: asyncpg.Connection, household_id: UUID) -> ev.HouseholdSnapshot:
    household = await store.get_household(conn, household_id)
    if household is None:
        raise NotFound(f"household {household_id} not found")
    members = await store.get_members(conn, household_id)
    assessment = await store.get_latest_assessment(conn, household_id)
    card = await store.get_latest_card(conn, household_id)
    reclassified = await store.village_classifications(conn, household["village_code"])
    return snapshot_from_rows(household, members, assessment, card, reclassified)


# --- plumbing ---------------------------------------------------------------------------------------


async def _audit(
    conn: asyncpg.Connection,
    household_id: UUID,
    action: str,
    ctx: Context,
    version: int,
    details: dict[str, Any],
) -> None:
    await store.insert_audit(
        conn, household_id, action=action, actor=ctx.actor.user_id, version=version, details=details
    )


async def _publish(conn: asyncpg.Connection, ctx: Context, event: BaseModel) -> None:
    household_id = str(event.household.household_id)  # type: ignore[attr-defined]
    envelope = make_envelope(event, source=SOURCE, subject=household_id, correlation_id=ctx.correlation_id)
    await outbox.enqueue(conn, topic=ctx.settings.topic(topics.HOUSEHOLDS.name), envelope=envelope)


async def get_household_view(conn: asyncpg.Connection, household_id: UUID) -> dict[str, Any]:
    """The household as the API shows it: current state, latest assessment with its items, card."""
    household = await store.get_household(conn, household_id)
    if household is None:
        raise NotFound(f"household {household_id} not found")
    return await _view(conn, household)


async def _view(conn: asyncpg.Connection, household: asyncpg.Record) -> dict[str, Any]:
    household_id = household["household_id"]
    return view_of(
        household,
        await store.get_members(conn, household_id),
        await store.get_latest_assessment(conn, household_id),
        await store.get_latest_card(conn, household_id),
        await store.village_classifications(conn, household["village_code"]),
    )


def view_of(
    household: Any, members: list[Any], assessment: Any, card: Any, reclassified: list[Any]
) -> dict[str, Any]:
    snapshot = snapshot_from_rows(household, members, assessment, card, reclassified)
    return {
        **dict(household),
        "location_category": snapshot.location_category_on(date.today()),
        "score": snapshot.score,
        "scoring_model": snapshot.scoring_model,
        "model_level": snapshot.model_level,
        "special_circumstances_reason": assessment["adjustment_reason"] if assessment else None,
        "female_headed": snapshot.female_headed,
        "assessment": dict(assessment) if assessment else None,
        "card": dict(card) if card else None,
        "members": [dict(m) for m in members],
    }


async def list_household_views(
    conn: asyncpg.Connection,
    *,
    filters: dict[str, Any],
    card_status: str | None,
    after: UUID | None,
    limit: int,
) -> list[dict[str, Any]]:
    rows = await store.list_households(
        conn, filters=filters, card_status=card_status, after=after, limit=limit
    )
    return [await _view(conn, row) for row in rows]
