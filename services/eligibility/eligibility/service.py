"""Use cases that change eligibility's own state: enrolment at the commune hall, PWYC conditions
verified by health facilities, and operator requests. Each runs in the caller's transaction and
decides the household again at once (same transaction), so the answer carries the new decisions."""

from dataclasses import dataclass
from datetime import date
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import structlog
from krousar_common.auth import Principal
from krousar_common.benefits import ConditionEvent, Entitlement, RejectedCondition, assess_conditions
from krousar_common.errors import Conflict, InvalidInput, NotFound
from krousar_common.events.eligibility import PayeeType
from krousar_common.events.households import HouseholdSnapshot, HouseholdStatus

from eligibility import evaluation, jobs, store
from eligibility.config import Settings
from eligibility.models import ConditionCreate, EnrolmentCreate

log = structlog.get_logger("eligibility.service")


@dataclass(frozen=True)
class Context:
    actor: Principal
    correlation_id: str
    settings: Settings

    @property
    def publishing(self) -> evaluation.Publishing:
        return jobs.publishing(self.settings, self.correlation_id)


async def locked_household(conn: asyncpg.Connection, household_id: UUID) -> HouseholdSnapshot:
    """The household, row-locked for this transaction (its decisions are about to change)."""
    snapshot = await store.lock_snapshot(conn, household_id)
    if snapshot is None:
        raise NotFound(f"household {household_id} is not known to eligibility (yet)")
    return HouseholdSnapshot.model_validate_json(snapshot)


async def decide_now(conn: asyncpg.Connection, household_id: UUID, ctx: Context) -> evaluation.Outcome:
    return await evaluation.decide_households(conn, [household_id], ctx.publishing, skip_locked=False)


# --- enrolment -------------------------------------------------------------------------------------


def payee_of(body: EnrolmentCreate, household: HouseholdSnapshot) -> tuple[str, UUID | None]:
    """(payee name, payee member id): the head, or the named proxy (a member or someone else)."""
    members = {m.member_id: m for m in household.members_on(date.today())}
    if body.payee_type is PayeeType.HEAD:
        if body.payee_member_id not in (None, household.head_member_id):
            raise InvalidInput("a HEAD payee is the household head", field="payee_member_id")
        return members[household.head_member_id].name_km, household.head_member_id
    if body.payee_member_id is not None:
        member = members.get(body.payee_member_id)
        if member is None:
            raise InvalidInput("not a current member of the household", field="payee_member_id")
        return body.payee_name or member.name_km, member.member_id
    assert body.payee_name is not None  # the model requires one of the two
    return body.payee_name, None


async def enrol(conn: asyncpg.Connection, body: EnrolmentCreate, ctx: Context) -> UUID:
    """Record the commune's verification of identity and payee; replaces an earlier enrolment."""
    household = await locked_household(conn, body.household_id)
    ctx.actor.ensure_commune(household.commune_code)
    if household.status is HouseholdStatus.WITHDRAWN:
        raise Conflict(f"household {household.household_id} is withdrawn from the registry")
    payee_name, payee_member_id = payee_of(body, household)
    enrolment_id = uuid4()
    previous = await store.get_active_enrolment(conn, household.household_id)
    if previous is not None:
        await store.end_enrolment(
            conn, previous["enrolment_id"], status="REPLACED", by=ctx.actor.user_id, reason="re-enrolled"
        )
    await store.insert_enrolment(
        conn,
        {
            "enrolment_id": enrolment_id,
            "household_id": household.household_id,
            "status": "ACTIVE",
            "payee_type": body.payee_type,
            "payee_name": payee_name,
            "payee_member_id": payee_member_id,
            "channel": body.channel,
            "account": body.account,
            "identity_document": body.identity_document,
            "verified_by": ctx.actor.user_id,
            "verified_on": body.verified_on or date.today(),
        },
    )
    if previous is not None:
        await store.set_replaced_by(conn, previous["enrolment_id"], enrolment_id)
    await decide_now(conn, household.household_id, ctx)
    log.info("household.enrolled", household_id=str(household.household_id), enrolment_id=str(enrolment_id))
    return enrolment_id


async def withdraw_enrolment(conn: asyncpg.Connection, enrolment_id: UUID, reason: str, ctx: Context) -> UUID:
    found = await store.get_enrolment(conn, enrolment_id)
    if found is None:
        raise NotFound(f"no enrolment {enrolment_id}")
    household = await locked_household(conn, found["household_id"])
    ctx.actor.ensure_commune(household.commune_code)
    current = await store.get_enrolment(conn, enrolment_id)  # re-read under the household lock
    if current is None or current["status"] != "ACTIVE":
        raise Conflict(f"enrolment {enrolment_id} is {current['status'] if current else 'gone'}, not ACTIVE")
    await store.end_enrolment(conn, enrolment_id, status="WITHDRAWN", by=ctx.actor.user_id, reason=reason)
    await decide_now(conn, household.household_id, ctx)
    return household.household_id


# --- PWYC conditions -------------------------------------------------------------------------------


def _outcome_of(
    event_id: UUID, accepted: list[Entitlement], rejected: list[RejectedCondition]
) -> Entitlement | RejectedCondition:
    found = [e for e in accepted if e.event_id == event_id]
    return found[0] if found else next(r for r in rejected if r.event.event_id == event_id)


async def record_condition(
    conn: asyncpg.Connection, household_id: UUID, body: ConditionCreate, ctx: Context
) -> dict[str, Any]:
    """Record a verified condition; beyond its maximum it is kept and rejected with the reason."""
    household = await locked_household(conn, household_id)
    (pwyc,) = await store.load_programmes(conn, [ctx.settings.pwyc_code]) or [None]
    if pwyc is None or pwyc.conditions is None:
        raise Conflict(f"programme {ctx.settings.pwyc_code} is not known to eligibility (yet)")
    earlier = [evaluation.condition_of(r) for r in await store.conditions_of(conn, [household_id])]
    event = ConditionEvent(event_id=uuid4(), **body.model_dump())
    assessment = assess_conditions(pwyc, household, [*earlier, event])
    outcome = _outcome_of(event.event_id, assessment.accepted, assessment.rejected)
    accepted = isinstance(outcome, Entitlement)
    row = {
        **event.model_dump(),
        "household_id": household_id,
        "accepted": accepted,
        "rejection_reason": None if accepted else outcome.reason,
        "rejection_detail": None if accepted else outcome.detail,
        "amount_riel": outcome.amount_riel if accepted else 0,
        "recorded_by": ctx.actor.user_id,
    }
    await store.insert_condition(conn, row)
    await decide_now(conn, household_id, ctx)
    stored = await store.get_condition(conn, event.event_id)
    return {**dict(stored), "explanation": outcome.explanation if accepted else None}


async def conditions_view(conn: asyncpg.Connection, household_id: UUID) -> list[dict[str, Any]]:
    return [dict(r) for r in await store.conditions_of(conn, [household_id])]
