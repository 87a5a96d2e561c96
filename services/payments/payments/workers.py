"""A national run's calculation spread over worker processes, still in one transaction.

The calculator is Python, one core per process: a run of 700,000 households is cut into pages of
household ids, and worker processes each read a page of decisions (a connection of their own),
assess it with the same ``assessment.assess_batch`` and hand back its payment lines and
left-out households already in PostgreSQL's binary COPY format. The service process only streams
those bytes into its calculation transaction (``calculation._calculate``), so the run is still
written entirely or not at all, and its locks and state move stay where they were. What crosses
between processes is a page's bounds and a few bytes a line, never rows of Python objects (which
cost as much to pickle as to calculate).
"""

import asyncio
import io
import multiprocessing
import struct
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg
import uvloop
from krousar_common import collector, db
from krousar_common.benefits import Calculator
from krousar_common.programmes import ProgrammeVersion

from payments import assessment, domain, store


@dataclass(frozen=True)
class Page:
    """A page of the run: the decisions after ``after`` up to and including ``until`` (None: the
    first or the last)."""

    database_url: str
    programme: str  # the programme version's definition, JSON
    run: assessment.RunSpec
    history: domain.History
    after: UUID | None
    until: UUID | None


@dataclass(frozen=True)
class PageDone:
    households: int
    lines: bytes  # COPY ... FROM STDIN (FORMAT binary) of payment_lines (store.LINE_COLUMNS)
    arithmetics: list[tuple[Any, ...]]  # rows of run_arithmetics the lines name (some hundreds)
    left_out: bytes  # the same of left_out (store.LEFT_OUT_COLUMNS)
    totals: domain.Totals


async def calculate_pages(
    conn: asyncpg.Connection,
    reader: asyncpg.Connection,
    run: assessment.RunSpec,
    programme: ProgrammeVersion,
    history: domain.History,
    *,
    database_url: str,
    workers: int,
    page_size: int,
    on_page: Callable[[int], Any],
) -> domain.Totals:
    """Calculate the run's pages in ``workers`` processes; write each page with COPY on ``conn``
    (the calculation's transaction) as it comes back. ``on_page`` gets the households of each."""
    bounds = await store.decision_page_bounds(reader, run.programme_code, page_size)
    definition = programme.model_dump_json()
    pages = [
        Page(database_url, definition, run, part, after, until)
        for part, after, until in zip(history.split(bounds), [None, *bounds], [*bounds, None], strict=True)
    ]
    # spawn, not fork: the service process has an event loop, client connections and threads.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as executor:
        try:
            return await _run_pages(conn, executor, pages, workers * 2, on_page)
        except BaseException:
            executor.shutdown(wait=False, cancel_futures=True)
            raise


async def _run_pages(
    conn: asyncpg.Connection,
    executor: Executor,
    pages: Sequence[Page],
    in_flight: int,
    on_page: Callable[[int], Any],
) -> domain.Totals:
    loop = asyncio.get_running_loop()
    totals, waiting, queue = domain.Totals(), set(), list(reversed(pages))
    while queue or waiting:
        while queue and len(waiting) < in_flight:  # a window: finished pages never pile up
            waiting.add(loop.run_in_executor(executor, assess_page, queue.pop()))
        finished, waiting = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        for future in finished:
            page: PageDone = future.result()
            await _write(conn, page)
            totals.merge(page.totals)
            await on_page(page.households)
    return totals


async def _write(conn: asyncpg.Connection, page: PageDone) -> None:
    await store.add_arithmetics(conn, page.arithmetics)
    if page.lines:
        await conn.copy_to_table(
            "payment_lines", source=io.BytesIO(page.lines), columns=store.LINE_COLUMNS, format="binary"
        )
    if page.left_out:
        await conn.copy_to_table(
            "left_out", source=io.BytesIO(page.left_out), columns=store.LEFT_OUT_COLUMNS, format="binary"
        )


# --- in a worker process ---------------------------------------------------------------------------

_worker: dict[str, Any] = {}


def assess_page(page: Page) -> PageDone:
    """In a worker process: read and assess one page (on uvloop: asyncpg reads rows faster)."""
    if "loop" not in _worker:
        collector.settle(collector.WORKER_THRESHOLDS)  # this process only calculates
        _worker["loop"] = uvloop.new_event_loop()
    return _worker["loop"].run_until_complete(_assess_page(page))


async def _assess_page(page: Page) -> PageDone:
    pool = _worker.get("pool")
    if pool is None:
        pool = _worker["pool"] = await db.create_pool(page.database_url, min_size=1, max_size=1)
    calculators = _worker.setdefault("calculators", {})  # one for all the pages of the run
    calculator = calculators.get(page.programme)
    if calculator is None:
        programme = ProgrammeVersion.model_validate_json(page.programme)
        calculator = calculators[page.programme] = Calculator(programme)
    async with pool.acquire() as conn:
        rows = await store.fetch_decision_page(
            conn, page.run.programme_code, after=page.after, until=page.until
        )
    totals = domain.Totals()
    batch = assessment.assess_batch(calculator, page.run, page.history, rows, totals)
    return PageDone(
        len(rows),
        encode(batch.lines, LINE_TYPES),
        batch.arithmetic_rows(page.run.run_id),
        encode(batch.left_out, LEFT_OUT_TYPES),
        totals,
    )


# --- PostgreSQL's binary COPY format ---------------------------------------------------------------

_HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"  # signature, flags, extension
_TRAILER = b"\xff\xff"
_NULL = b"\xff\xff\xff\xff"
_int32 = struct.Struct(">i").pack


def _uuid(value: Any) -> bytes:
    return b"\x00\x00\x00\x10" + value.bytes


def _text(value: str | None) -> bytes:
    if value is None:
        return _NULL
    data = value.encode()
    return _int32(len(data)) + data


def _int4(value: int) -> bytes:
    return b"\x00\x00\x00\x04" + _int32(value)


def _int8(value: int) -> bytes:
    return b"\x00\x00\x00\x08" + value.to_bytes(8, "big", signed=True)


Encoder = Callable[[Any], bytes]


def _shared(encoder: Encoder) -> Encoder:
    """``encoder`` remembering what it made, for a column of few distinct values (codes, the
    arithmetic of a line): a country has some thousands of them, a run hundreds of thousands of
    lines."""
    made: dict[Any, bytes] = {}

    def encode_shared(value: Any) -> bytes:
        data = made.get(value)
        if data is None:
            data = made[value] = encoder(value)
        return data

    return encode_shared


_code = _shared(_text)
# The columns of store.LINE_COLUMNS and store.LEFT_OUT_COLUMNS, in their order.
LINE_TYPES: tuple[Encoder, ...] = (
    _uuid,  # payment_id
    _shared(_uuid),  # run_id
    _code,  # programme_code
    _code,  # period
    _uuid,  # household_id
    _code,  # component
    _int4,  # attempt
    _int8,  # amount_riel
    _shared(_uuid),  # arithmetic_id
    *(_code,) * 5,  # province, commune, village, location category, poverty level
    _text,  # payee_name
    _code,  # channel
    _text,  # account
    _code,  # status
)
LEFT_OUT_TYPES: tuple[Encoder, ...] = (_shared(_uuid), _uuid, _code, _text)


def encode(rows: Sequence[Sequence[Any]], types: Sequence[Encoder]) -> bytes:
    """Rows as COPY ... FROM STDIN (FORMAT binary) takes them; b"" for no row."""
    if not rows:
        return b""
    count = struct.pack(">h", len(types))
    parts = [_HEADER]
    for row in rows:
        parts.append(count)
        parts += [encoder(value) for encoder, value in zip(types, row, strict=True)]
    parts.append(_TRAILER)
    return b"".join(parts)
