"""Use cases of payment runs. Each takes a connection inside the caller's transaction, writes its
state change and its event (outbox) together, and never commits."""

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import asyncpg
from krousar_common import outbox, topics
from krousar_common.auth import Principal
from krousar_common.events import make_envelope
from krousar_common.events.payments import RunState, RunStateChanged
from krousar_common.programmes import ProgrammeStatus, ProgrammeVersion
from pydantic import ValidationError

from payments import domain, store
from payments.config import Settings
from payments.errors import (
    CalculationRunning,
    OverBudget,
    RunNotFound,
    SameApprover,
    UnknownProgramme,
    WrongState,
)

SOURCE = "krousar/payments"


@dataclass(frozen=True)
class Context:
    actor: str
    correlation_id: str
    settings: Settings

    @classmethod
    def of(cls, principal: Principal, correlation_id: str, settings: Settings) -> "Context":
        return cls(principal.user_id, correlation_id, settings)


# --- programmes ------------------------------------------------------------------------------------


async def get_payable_programme(conn: asyncpg.Connection, code: str) -> ProgrammeVersion:
    """The latest ACTIVE version of a programme, as its last ProgrammeVersionPublished said."""
    versions = await store.get_programme_versions(conn, code)
    if not versions:
        raise UnknownProgramme(
            f"programme {code} is not known to payments: no version of it was published on"
            " programmes.topups.v1",
            field="programme_code",
        )
    active = [v for v in versions if v["status"] == ProgrammeStatus.ACTIVE]
    if not active:
        known = ", ".join(f"v{v['version']} {v['status']}" for v in versions)
        raise UnknownProgramme(f"programme {code} has no ACTIVE version ({known})", field="programme_code")
    return ProgrammeVersion.model_validate(active[0]["definition"])


async def load_programme(conn: asyncpg.Connection, code: str, version: int) -> ProgrammeVersion:
    for row in await store.get_programme_versions(conn, code):
        if row["version"] == version:
            return ProgrammeVersion.model_validate(row["definition"])
    raise LookupError(f"programme {code} v{version} is not in the projection")


# --- runs ------------------------------------------------------------------------------------------


async def plan_run(conn: asyncpg.Connection, code: str, period: str, ctx: Context) -> dict[str, Any]:
    """The row of a new DRAFT run; 422 naming the field when the programme or period is wrong."""
    programme = await get_payable_programme(conn, code)
    if programme.conditions is not None:
        raise UnknownProgramme(
            f"{code} pays verified conditions (PWYC entitlements): runs of it are not supported yet",
            field="programme_code",
        )
    try:
        key, rules_day = programme.payment_key(period)
        opens, closes = programme.calendar.claim_window(key)
    except (ValueError, ValidationError) as exc:
        raise UnknownProgramme(str(exc), field="period") from exc
    return {
        "run_id": uuid4(),
        "programme_code": code,
        "programme_version": programme.version,
        "period": key,
        "rules_day": rules_day,
        "available_from": opens,
        "claim_until": closes,
        "state": RunState.DRAFT,
        "budget_ceiling_riel": programme.budget_ceiling_riel,
        "created_by": ctx.actor,
        "correlation_id": ctx.correlation_id,
    }


async def create_run(conn: asyncpg.Connection, run: dict[str, Any], ctx: Context) -> asyncpg.Record:
    try:
        async with conn.transaction():  # a savepoint: the unique violation must not end the request
            await store.insert_run(conn, run)
    except asyncpg.UniqueViolationError as exc:
        running = await store.get_calculating_run(conn, run["programme_code"], run["period"])
        raise calculation_running(run["programme_code"], run["period"], running) from exc
    created = await get_run_or_raise(conn, run["run_id"])
    await publish_state(conn, created, ctx)
    return created


def calculation_running(code: str, period: str, run_id: object) -> CalculationRunning:
    return CalculationRunning(
        f"a calculation of {code} {period} is already running (run {run_id}); wait for it to finish",
        run_id=str(run_id) if run_id else None,
    )


async def get_run_or_raise(
    conn: asyncpg.Connection, run_id: UUID, *, for_update: bool = False
) -> asyncpg.Record:
    run = await store.get_run(conn, run_id, for_update=for_update)
    if run is None:
        raise RunNotFound(f"run {run_id} not found")
    return run


async def approve_run(conn: asyncpg.Connection, run_id: UUID, ctx: Context) -> asyncpg.Record:
    run = await get_run_or_raise(conn, run_id, for_update=True)
    if run["state"] != RunState.CALCULATED:
        raise WrongState(f"run {run_id} is {run['state']}: only a CALCULATED run can be approved")
    if run["lines"] == 0:
        raise WrongState(f"run {run_id} pays nobody: cancel it instead")
    if run["created_by"] == ctx.actor:
        raise SameApprover(
            f"{ctx.actor} created run {run_id} and cannot also approve it: another payment approver must"
        )
    if domain.over_budget(run["amount_riel"], run["budget_ceiling_riel"]):
        excess = run["amount_riel"] - run["budget_ceiling_riel"]
        raise OverBudget(
            f"run total {run['amount_riel']:,} riel exceeds the budget ceiling"
            f" {run['budget_ceiling_riel']:,} riel of {run['programme_code']} v{run['programme_version']}"
            f" by {excess:,} riel: it cannot be approved",
            amount_riel=run["amount_riel"],
            budget_ceiling_riel=run["budget_ceiling_riel"],
        )
    return await move(conn, run_id, RunState.CALCULATED, RunState.APPROVED, ctx, approved_by=ctx.actor)


async def cancel_run(conn: asyncpg.Connection, run_id: UUID, reason: str, ctx: Context) -> asyncpg.Record:
    run = await get_run_or_raise(conn, run_id, for_update=True)
    if not domain.can_move(run["state"], RunState.CANCELLED):
        raise WrongState(f"run {run_id} is {run['state']}: only a run not yet approved can be cancelled")
    await store.cancel_lines(conn, run_id)
    return await move(
        conn, run_id, run["state"], RunState.CANCELLED, ctx, cancelled_by=ctx.actor, cancel_reason=reason
    )


async def move(
    conn: asyncpg.Connection, run_id: UUID, current: str, to: RunState, ctx: Context, **columns: Any
) -> asyncpg.Record:
    """Move the run from ``current`` to ``to``, stamp the time, and publish the change."""
    stamp = {
        RunState.CALCULATED: "calculated_at",
        RunState.APPROVED: "approved_at",
        RunState.INSTRUCTED: "instructed_at",
        RunState.RECONCILED: "reconciled_at",
        RunState.CANCELLED: "cancelled_at",
    }[to]
    moved = await store.move_run(
        conn, run_id, from_states=[current], to=to, **columns, **{stamp: datetime.now(UTC)}
    )
    if moved is None:
        raise WrongState(f"run {run_id} is no longer {current}")
    await publish_state(conn, moved, ctx)
    return moved


async def publish_state(conn: asyncpg.Connection, run: asyncpg.Record, ctx: Context) -> None:
    event = RunStateChanged(
        run_id=run["run_id"],
        programme_code=run["programme_code"],
        period=run["period"],
        state=RunState(run["state"]),
        households=run["households"],
        amount_riel=run["amount_riel"],
        changed_by=ctx.actor,
    )
    envelope = make_envelope(
        event, source=SOURCE, subject=str(run["run_id"]), correlation_id=ctx.correlation_id
    )
    await outbox.enqueue(conn, topic=ctx.settings.topic(topics.RUNS.name), envelope=envelope)
