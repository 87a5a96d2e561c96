"""Use cases of the programme catalogue. Each runs inside the caller's transaction, writes its rows
and publishes every version it wrote, as stored (``ProgrammeVersionPublished``, outbox): DRAFTs
too, so consumers see every version; only an ACTIVE version is in force, and consumers decide and
pay on nothing else."""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
import structlog
from krousar_common import outbox, topics
from krousar_common.auth import Principal
from krousar_common.errors import Conflict, InvalidInput, NotFound
from krousar_common.events import make_envelope
from krousar_common.events.programmes import ProgrammeVersionPublished
from krousar_common.programmes import ProgrammeKind, ProgrammeStatus, ProgrammeVersion

from topups import store
from topups.config import Settings
from topups.validation import FieldError, check_topup

log = structlog.get_logger("topups.service")
SEED_ACTOR = "system:seed"


@dataclass(frozen=True)
class Context:
    actor: Principal
    correlation_id: str
    settings: Settings


async def publish(conn: asyncpg.Connection, ctx: Context, code: str, *versions: int) -> None:
    """Publish these versions of ``code`` as the catalogue now holds them, in this order."""
    for version in versions:
        row = await store.get_version(conn, code, version)
        await _publish_one(conn, ctx, store.programme_of(row))


async def _publish_one(conn: asyncpg.Connection, ctx: Context, programme: ProgrammeVersion) -> None:
    event = ProgrammeVersionPublished(programme=programme)
    envelope = make_envelope(
        event, source="krousar/topups", subject=programme.code, correlation_id=ctx.correlation_id
    )
    await outbox.enqueue(conn, topic=ctx.settings.topic(topics.TOPUPS.name), envelope=envelope)
    log.info("programme.published", code=programme.code, version=programme.version, status=programme.status)


# --- seeding ---------------------------------------------------------------------------------------


async def seed_programmes(
    conn: asyncpg.Connection, programmes: Sequence[ProgrammeVersion], ctx: Context
) -> list[str]:
    """Store and publish each seed version once; returns ``CODE vN`` of those seeded now."""
    await store.lock_catalogue(conn)
    seeded = []
    for programme in programmes:
        if await _seed_one(conn, programme, ctx):
            seeded.append(f"{programme.code} v{programme.version}")
    return seeded


async def _seed_one(conn: asyncpg.Connection, programme: ProgrammeVersion, ctx: Context) -> bool:
    rows = await store.get_versions(conn, programme.code)
    same = next((r for r in rows if r["version"] == programme.version), None)
    if same is not None:
        if store.programme_of(same) != programme:
            # A version in force is never edited: a change must come as a new version file.
            log.warning("seed.changed_without_new_version", code=programme.code, version=programme.version)
        return False
    active = next((r for r in rows if r["status"] == ProgrammeStatus.ACTIVE), None)
    if active is not None and active["version"] > programme.version:
        superseded = programme.model_copy(update={"status": ProgrammeStatus.CLOSED})
        await store.insert_version(conn, superseded, origin="SEED", actor=SEED_ACTOR)
        await publish(conn, ctx, programme.code, programme.version)
        return True
    supersedes = active is not None and programme.status is ProgrammeStatus.ACTIVE
    if supersedes:
        await store.set_closed(conn, programme.code, active["version"], SEED_ACTOR, programme.version)
    await store.insert_version(conn, programme, origin="SEED", actor=SEED_ACTOR)
    superseded_versions = [active["version"]] if supersedes else []
    await publish(conn, ctx, programme.code, programme.version, *superseded_versions)
    return True


# --- top-up lifecycle: DRAFT → ACTIVE → CLOSED -----------------------------------------------------


def _raise_if_invalid(errors: list[FieldError]) -> None:
    if errors:
        raise InvalidInput(
            "; ".join(f"{e.field}: {e.message}" for e in errors),
            field=errors[0].field,
            errors=[{"field": e.field, "message": e.message} for e in errors],
        )


async def _topup_catalogue(conn: asyncpg.Connection) -> dict[str, ProgrammeVersion]:
    return {r["code"]: store.programme_of(r) for r in await store.latest_versions(conn, ProgrammeKind.TOPUP)}


async def _versions_of_topup(conn: asyncpg.Connection, code: str) -> list[asyncpg.Record]:
    rows = await store.get_versions(conn, code, for_update=True)
    if not rows:
        raise NotFound(f"no top-up {code}")
    if rows[0]["kind"] != ProgrammeKind.TOPUP:
        raise Conflict(f"{code} is a routine programme: its versions come from seed files, not this API")
    return rows


def _with_status(rows: list[asyncpg.Record], status: ProgrammeStatus) -> asyncpg.Record | None:
    return next((r for r in rows if r["status"] == status), None)


async def create_topup(conn: asyncpg.Connection, body: ProgrammeVersion, ctx: Context) -> tuple[str, int]:
    """Store a new top-up as DRAFT version 1 (the body's version and status are not the caller's to set)."""
    await store.lock_catalogue(conn)
    if await store.get_versions(conn, body.code):
        raise Conflict(
            f"programme {body.code} exists already; edit its DRAFT or start a new version", field="code"
        )
    _raise_if_invalid(check_topup(body, await _topup_catalogue(conn)))
    draft = body.model_copy(update={"version": 1, "status": ProgrammeStatus.DRAFT})
    await store.insert_version(conn, draft, origin="API", actor=ctx.actor.user_id)
    await publish(conn, ctx, body.code, 1)
    log.info("topup.created", code=body.code)
    return body.code, 1


async def update_draft(conn: asyncpg.Connection, code: str, body: ProgrammeVersion, ctx: Context) -> int:
    await store.lock_catalogue(conn)
    draft = _with_status(await _versions_of_topup(conn, code), ProgrammeStatus.DRAFT)
    if draft is None:
        raise Conflict(f"{code} has no DRAFT version: POST /v1/topups/{code}/versions starts one")
    if body.code != code:
        raise InvalidInput(f"code {body.code} does not match the top-up {code} being edited", field="code")
    _raise_if_invalid(check_topup(body, await _topup_catalogue(conn)))
    edited = body.model_copy(update={"version": draft["version"], "status": ProgrammeStatus.DRAFT})
    await store.update_definition(conn, code, draft["version"], edited, ctx.actor.user_id)
    await publish(conn, ctx, code, draft["version"])
    return draft["version"]


async def activate(conn: asyncpg.Connection, code: str, ctx: Context) -> int:
    """Put the DRAFT in force (its rates are frozen from now on) and publish it; a version in force
    before it is superseded, and published CLOSED after it, so consumers always hold one in force."""
    await store.lock_catalogue(conn)
    rows = await _versions_of_topup(conn, code)
    draft = _with_status(rows, ProgrammeStatus.DRAFT)
    if draft is None:
        raise Conflict(f"{code} has no DRAFT version to activate")
    programme = store.programme_of(draft)
    _raise_if_invalid(check_topup(programme, await _topup_catalogue(conn)))
    active = _with_status(rows, ProgrammeStatus.ACTIVE)
    if active is not None:
        await store.set_closed(
            conn, code, active["version"], ctx.actor.user_id, superseded_by=draft["version"]
        )
    await store.set_active(conn, code, draft["version"], ctx.actor.user_id)
    superseded = [active["version"]] if active is not None else []
    await publish(conn, ctx, code, draft["version"], *superseded)
    return draft["version"]


async def start_new_version(conn: asyncpg.Connection, code: str, ctx: Context) -> int:
    """A DRAFT copy (version + 1) of the version in force, to edit and activate in its place."""
    await store.lock_catalogue(conn)
    rows = await _versions_of_topup(conn, code)
    active = _with_status(rows, ProgrammeStatus.ACTIVE)
    if active is None:
        raise Conflict(f"{code} has no ACTIVE version to start a new version from")
    if _with_status(rows, ProgrammeStatus.DRAFT) is not None:
        raise Conflict(f"{code} already has a DRAFT version: edit it with PUT /v1/topups/{code}")
    version = rows[-1]["version"] + 1
    update = {"version": version, "status": ProgrammeStatus.DRAFT}
    draft = store.programme_of(active).model_copy(update=update)
    await store.insert_version(conn, draft, origin="API", actor=ctx.actor.user_id)
    await publish(conn, ctx, code, version)
    return version


async def close(conn: asyncpg.Connection, code: str, ctx: Context) -> int:
    """Close the top-up: its version in force and a pending DRAFT are CLOSED and published."""
    await store.lock_catalogue(conn)
    rows = await _versions_of_topup(conn, code)
    active = _with_status(rows, ProgrammeStatus.ACTIVE)
    if active is None:
        raise Conflict(f"{code} has no ACTIVE version to close")
    draft = _with_status(rows, ProgrammeStatus.DRAFT)
    if draft is not None:
        await store.set_closed(conn, code, draft["version"], ctx.actor.user_id)
    await store.set_closed(conn, code, active["version"], ctx.actor.user_id)
    dropped = [draft["version"]] if draft is not None else []
    await publish(conn, ctx, code, active["version"], *dropped)
    return active["version"]


# --- reading ---------------------------------------------------------------------------------------


def version_view(row: asyncpg.Record) -> dict[str, Any]:
    view = dict(row)
    view["definition"] = store.programme_of(row)
    return view


async def get_programme_view(conn: asyncpg.Connection, code: str) -> dict[str, Any]:
    rows = await store.get_versions(conn, code)
    if not rows:
        raise NotFound(f"no programme {code}")
    latest = rows[-1]
    return {
        "code": code,
        "kind": latest["kind"],
        "title": latest["definition"]["title"],
        "versions": [version_view(r) for r in rows],
    }


async def get_version_view(conn: asyncpg.Connection, code: str, version: int) -> dict[str, Any]:
    row = await store.get_version(conn, code, version)
    if row is None:
        raise NotFound(f"no version {version} of programme {code}")
    return version_view(row)


async def list_programme_views(conn: asyncpg.Connection) -> list[dict[str, Any]]:
    return [dict(r) for r in await store.programme_summaries(conn)]
