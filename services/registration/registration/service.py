"""Use cases of the registry. Each takes a connection inside the caller's transaction, writes
its state change, an audit row and its event (outbox) together, and never commits."""

import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import orjson
from krousar_common import outbox, topics
from krousar_common.auth import Principal
from krousar_common.errors import Conflict, InvalidInput, NotFound
from krousar_common.events import Envelope, envelope_of, make_envelope
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
    return score(model, command.answers, command.members, command.interviewed_on)


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
    household_id, assessment_id, *member_ids = new_ids(2 + len(command.members))
    members = [member_row(m, household_id, i) for m, i in zip(command.members, member_ids, strict=True)]
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


_V4_CLEARED = ~((0xF000 << 64) | (0xC000 << 48))
_V4_MARKED = (4 << 76) | (0x8000 << 48)


def new_ids(count: int) -> list[UUID]:
    """``count`` random (version 4) UUIDs from one read of the system's randomness, where
    ``uuid4`` reads it for each: an import needs millions of ids."""
    raw = os.urandom(16 * count)
    numbers = (int.from_bytes(raw[at : at + 16]) for at in range(0, len(raw), 16))
    return [UUID(int=number & _V4_CLEARED | _V4_MARKED) for number in numbers]


def is_poor(level: str) -> bool:
    return level != ev.PovertyLevel.NOT_POOR


async def register_household(
    conn: asyncpg.Connection, command: HouseholdCreate, ctx: Context
) -> dict[str, Any]:
    """Register, score and card a household; returns it as the API shows it.

    Two statements: the registry's facts about the household (held national IDs, a possible
    duplicate, the card number reserved), then every row at once. The card number's sequence row
    stays locked from the first until commit, so no more than that happens in between."""
    village = resolve_village(command.village_code)
    ctx.actor.ensure_commune(village.commune_code)
    assessment = score_command(command, village)
    head = next(m for m in command.members if m.relationship == ev.Relationship.HEAD)
    facts = await store.registration_facts(
        conn,
        national_ids=[m.national_id for m in command.members if m.national_id],
        head_name_km=head.name_km,
        head_date_of_birth=head.date_of_birth,
        village_code=village.code,
        reserve_card=is_poor(assessment.model_level),
    )
    _reject_held(facts.held)
    plan = plan_registration(
        command,
        village,
        assessment,
        actor=ctx.actor.user_id,
        possible_duplicate=facts.possible_duplicate,
        card_number=None if facts.card_seq is None else cards.card_number(village.code, facts.card_seq),
        card_valid_years=ctx.settings.card_valid_years,
    )
    data = snapshot_data(plan.household, plan.members, plan.assessment, plan.card, facts.reclassified)
    envelope = registered_envelope(data, ctx.correlation_id)
    topic = ctx.settings.topic(topics.HOUSEHOLDS.name)
    try:
        times = await store.insert_registration(
            conn,
            household=plan.household,
            members=plan.members,
            assessment=plan.assessment,
            card=plan.card,
            audit=plan.audit,
            event=(envelope.id, topic, envelope.subject, envelope.type, envelope.to_bytes()),
            channel=outbox.CHANNEL,
        )
    except asyncpg.UniqueViolationError as exc:
        if exc.constraint_name != "members_national_id_active":
            raise
        raise _national_id_raced() from exc
    household = {**plan.household, "registered_at": times["registered_at"], "updated_at": times["updated_at"]}
    assessment_row = {**plan.assessment, "created_at": times["created_at"]}
    return view_of(household, plan.members, assessment_row, plan.card, facts.reclassified)


def registered_envelope(snapshot: dict[str, Any], correlation_id: str) -> Envelope:
    """``HouseholdRegistered`` around snapshot data. The snapshot goes in as JSON already written:
    the envelope's generic dump of so much nested data would cost several times more."""
    return envelope_of(
        ev.HouseholdRegistered,
        {"household": orjson.Fragment(orjson.dumps(snapshot))},
        source=SOURCE,
        subject=str(snapshot["household_id"]),
        correlation_id=correlation_id,
    )


async def reject_held_national_ids(conn: asyncpg.Connection, national_ids: list[str]) -> None:
    if national_ids:
        _reject_held(await store.households_holding_national_ids(conn, national_ids))


def _reject_held(held: dict[str, UUID]) -> None:
    if held:
        national_id, other = next(iter(held.items()))
        raise Conflict(
            f"national ID {national_id} already belongs to a member of active household {other}",
            field="members.national_id",
            other_household_id=str(other),
        )


def score(
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


def member_row(
    member: MemberCreate, household_id: UUID, member_id: UUID | None = None, **extra: Any
) -> dict[str, Any]:
    # The model's own field values (what model_dump gives for this flat model), at a twentieth
    # of the cost: an import makes hundreds of thousands of these rows.
    row = dict(member.__dict__)
    row.update(
        member_id=member_id or uuid4(),
        household_id=household_id,
        active=True,
        joined_on=None,
        joined_reason=None,
        left_on=None,
        left_reason=None,
    )
    row.update(extra)
    return row


async def insert_members(conn: asyncpg.Connection, members: list[dict[str, Any]]) -> None:
    try:
        await store.insert_members(conn, members)
    except asyncpg.UniqueViolationError as exc:
        raise _national_id_raced() from exc


def _national_id_raced() -> Conflict:
    """Two registrations raced for one national ID: the partial unique index decided."""
    return Conflict(
        "a national ID of this household already belongs to an active household",
        field="members.national_id",
    )


async def insert_assessment(
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


async def issue_card_if_poor(
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


async def audit(
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


async def publish(conn: asyncpg.Connection, ctx: Context, event: BaseModel) -> None:
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
    within: frozenset[str] | None,
    card_status: str | None,
    after: UUID | None,
    limit: int,
) -> list[dict[str, Any]]:
    rows = await store.list_households(
        conn, filters=filters, within=within, card_status=card_status, after=after, limit=limit
    )
    return [await _view(conn, row) for row in rows]
