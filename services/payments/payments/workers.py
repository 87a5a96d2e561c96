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
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg
import uvloop
from krousar_common import copy_binary, db, worker_processes
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
    with worker_processes.pool(workers) as executor:
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
        copy_binary.encode(batch.lines, LINE_TYPES),
        batch.arithmetic_rows(page.run.run_id),
        copy_binary.encode(batch.left_out, LEFT_OUT_TYPES),
        totals,
    )


# --- the columns of store.LINE_COLUMNS and store.LEFT_OUT_COLUMNS, in their order -----------------

_code, _text, _uuid = copy_binary.code, copy_binary.optional_text, copy_binary.uuid
LINE_TYPES: tuple[copy_binary.Encoder, ...] = (
    _uuid,  # payment_id
    copy_binary.shared(_uuid),  # run_id
    _code,  # programme_code
    _code,  # period
    _uuid,  # household_id
    _code,  # component
    copy_binary.int4,  # attempt
    copy_binary.int8,  # amount_riel
    copy_binary.shared(_uuid),  # arithmetic_id
    *(_code,) * 5,  # province, commune, village, location category, poverty level
    _text,  # payee_name
    _code,  # channel
    _text,  # account
    _code,  # status
)
LEFT_OUT_TYPES: tuple[copy_binary.Encoder, ...] = (copy_binary.shared(_uuid), _uuid, _code, _text)
