"""The national caseload as eligibility holds it, made fast enough to benchmark a full evaluation.

Households come from ``registration.synthetic`` (the import CSV) and go through registration's own
planning code (parse and check, score, plan the rows, build the snapshot the events carry), so
each snapshot is exactly what ``registry.households.v1`` would bring. They are cached as JSON lines
in ``bench-data/`` and COPied straight into eligibility's projection (the columns the consumer
writes); enrolments, PWYC conditions and the seeded programmes are added the same way.
"""

import hashlib
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from datetime import date
from pathlib import Path
from typing import Any

import asyncpg
import orjson
from eligibility import household, store
from krousar_common.auth import Principal
from registration import service, synthetic
from registration.domain import cards
from registration.imports import csv_format
from registration.imports import service as imports
from registration.snapshots import snapshot_data
from topups import seed

from bench.common import DATA

CHUNK = 10_000  # households per planning job
ENROLLED_ON = date(2023, 4, 1)
CARDS_PER_CHUNK = 1_000  # card sequence numbers each job may use per village
ACTOR = Principal(user_id="bench", roles=frozenset({"registry_admin"}))
SEED_FOLDER = Path(seed.__file__).resolve().parent / "seed"
ENROLMENT_COLUMNS = [
    "enrolment_id",
    "household_id",
    "status",
    "payee_type",
    "payee_name",
    "payee_member_id",
    "channel",
    "account",
    "identity_document",
    "verified_by",
    "verified_on",
]
CONDITION_COLUMNS = [
    "event_id",
    "household_id",
    "kind",
    "occurred_on",
    "subject_id",
    "facility_code",
    "babies",
    "accepted",
    "amount_riel",
    "recorded_by",
]


# --- snapshots (cached) ----------------------------------------------------------------------------


def csv_path(households: int, seed_: int) -> Path:
    """The import CSV ``bench_import`` uses too (same name, same content)."""
    return DATA / f"households-{households}-seed{seed_}.csv"


def snapshots_path(households: int, seed_: int) -> Path:
    return DATA / f"eligibility-snapshots-{households}-seed{seed_}.jsonl"


def write_snapshots(households: int, seed_: int, *, workers: int = 2) -> Path:
    """Plan every household of the synthetic CSV with registration's code; one JSON line each."""
    path, source = snapshots_path(households, seed_), csv_path(households, seed_)
    DATA.mkdir(exist_ok=True)
    if not source.exists():
        synthetic.write_csv(source, households, seed=seed_, workers=workers)
    partial = path.with_suffix(".partial")
    with partial.open("wb") as out, ProcessPoolExecutor(max_workers=workers) as pool:
        for lines in pool.map(plan_chunk, enumerate(csv_chunks(source))):
            out.write(lines)
    partial.rename(path)
    return path


def csv_chunks(path: Path) -> Iterator[str]:
    """The CSV cut into texts of ``CHUNK`` households, each with the header (a household's rows are
    consecutive and its reference is the first column)."""
    with path.open(encoding="utf-8") as lines:
        header = next(lines)
        chunk, refs, last = [header], 0, None
        for line in lines:
            ref = line.split(",", 1)[0]
            if ref != last:
                if refs == CHUNK:
                    yield "".join(chunk)
                    chunk, refs = [header], 0
                refs, last = refs + 1, ref
            chunk.append(line)
        if refs:
            yield "".join(chunk)


def plan_chunk(job: tuple[int, str]) -> bytes:
    """Snapshots of one chunk, as registration's import plans them (card numbers from a range of
    sequence numbers per village that no other chunk uses)."""
    number, text = job
    layout, rows = csv_format.read_households(text)
    checked, errors = imports.parse_and_check(layout, rows, ACTOR)
    if errors:
        raise ValueError(f"synthetic households rejected: {errors[:3]}")
    used: Counter[str] = Counter()
    lines = []
    for item in checked:
        card_number = None
        if service.is_poor(item.assessment.model_level):
            used[item.village.code] += 1
            if used[item.village.code] >= CARDS_PER_CHUNK:
                raise ValueError(f"more than {CARDS_PER_CHUNK} cards in village {item.village.code}")
            card_number = cards.card_number(
                item.village.code, number * CARDS_PER_CHUNK + used[item.village.code]
            )
        plan = service.plan_registration(
            item.parsed.command,
            item.village,
            item.assessment,
            actor=ACTOR.user_id,
            possible_duplicate=False,
            card_number=card_number,
            card_valid_years=3,
        )
        data = snapshot_data(plan.household, plan.members, plan.assessment, plan.card, [])
        lines.append(orjson.dumps(data))
    return b"\n".join(lines) + b"\n"


def read_snapshots(path: Path) -> Iterator[tuple[dict[str, Any], str]]:
    """(parsed snapshot, its JSON text) per household."""
    with path.open("rb") as lines:
        for line in lines:
            yield orjson.loads(line), line.rstrip(b"\n").decode()


# --- eligibility's tables --------------------------------------------------------------------------


def household_row(data: dict[str, Any], text: str) -> tuple[Any, ...]:
    """The projection row ``store.upsert_household`` writes for this snapshot (JSON as text: this
    connection has asyncpg's default codecs)."""
    card = data["card"] or {}
    issued, until = card.get("issued_on"), card.get("valid_until")
    return (
        uuid.UUID(data["household_id"]),
        data["version"],
        data["province_code"],
        data["district_code"],
        data["commune_code"],
        data["village_code"],
        data["poverty_level"],
        data["status"],
        data["female_headed"],
        card.get("status"),
        date.fromisoformat(issued) if issued else None,
        date.fromisoformat(until) if until else None,
        text,
        orjson.dumps(household.facts_of(data)).decode(),
    )


def enrolled(household_id: str, share: float) -> bool:
    """A stable pseudo-random ``share`` of households (same ones every run)."""
    digest = hashlib.blake2b(household_id.encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big") < share * 2**32


def enrolment_row(data: dict[str, Any], verified_on: date) -> tuple[Any, ...]:
    """The household's head enrolled as payee, identity verified on ``verified_on``."""
    head = next(m for m in data["members"] if m["member_id"] == data["head_member_id"])
    return (
        uuid.uuid4(),
        uuid.UUID(data["household_id"]),
        "ACTIVE",
        "HEAD",
        head["name_km"],
        uuid.UUID(head["member_id"]),
        "WING",
        "012345678",
        "NATIONAL_ID",
        "bench",
        verified_on,
    )


def condition_rows(data: dict[str, Any], visit_on: date) -> list[tuple[Any, ...]]:
    """An accepted antenatal visit for each pregnant member (PWYC then pays the household)."""
    return [
        (
            uuid.uuid4(),
            uuid.UUID(data["household_id"]),
            "ANTENATAL_VISIT",
            visit_on,
            uuid.UUID(m["member_id"]),
            "HC-0101",
            1,
            True,
            80_000,
            "bench",
        )
        for m in data["members"]
        if m["is_pregnant"]
    ]


async def load_projection(
    conn: asyncpg.Connection, path: Path, *, enrolled_share: float, visit_on: date, batch: int = 50_000
) -> Counter[str]:
    """COPY every snapshot, the enrolments and the conditions. ``conn`` has asyncpg's default
    codecs (jsonb from text), not the services' pool codecs."""
    counts: Counter[str] = Counter()
    households, enrolments, conditions = [], [], []
    for data, text in read_snapshots(path):
        households.append(household_row(data, text))
        if enrolled(data["household_id"], enrolled_share):
            enrolments.append(enrolment_row(data, ENROLLED_ON))
        conditions += condition_rows(data, visit_on)
        if len(households) == batch:
            await _copy(conn, counts, households, enrolments, conditions)
            households, enrolments, conditions = [], [], []
    await _copy(conn, counts, households, enrolments, conditions)
    await conn.execute("ANALYZE households; ANALYZE enrolments; ANALYZE conditions")
    return counts


async def _copy(conn: asyncpg.Connection, counts: Counter[str], *tables: list[tuple[Any, ...]]) -> None:
    names = ("households", "enrolments", "conditions")
    columns = (store.HOUSEHOLD_COLUMNS, ENROLMENT_COLUMNS, CONDITION_COLUMNS)
    for name, cols, rows in zip(names, columns, tables, strict=True):
        if rows:
            await conn.copy_records_to_table(name, records=rows, columns=cols)
            counts[name] += len(rows)


async def seed_programmes(conn: asyncpg.Connection) -> list[str]:
    """The seeded routine programmes, as eligibility's consumer stores them (pool codecs)."""
    programmes = seed.load_seed([SEED_FOLDER])
    for programme in programmes:
        await store.upsert_programme(conn, programme)
    return [p.code for p in programmes]
