"""A run's households through the one calculator: the payment lines and left-out rows of a page
of decisions. No I/O: the calculation runs it in the service process and in worker processes
(``workers``), which import only this of the calculation.
"""

import functools
import hashlib
from dataclasses import dataclass, field
from datetime import date
from typing import Any
from uuid import UUID

import asyncpg
import orjson
from krousar_common.benefits import Calculator, Term

from payments import domain


@dataclass(frozen=True)
class RunSpec:
    """What a calculation needs to know of its run."""

    run_id: UUID
    programme_code: str
    period: str
    rules_day: date

    @classmethod
    def of(cls, run: asyncpg.Record) -> "RunSpec":
        return cls(run["run_id"], run["programme_code"], run["period"], run["rules_day"])


@dataclass(frozen=True)
class Arithmetic:
    """A line's arithmetic as run_arithmetics keeps it, shared by every line with the same one."""

    arithmetic_id: UUID
    terms: str  # JSON: label, quantity, unit_rate, amount of each term
    explanation: str


@dataclass
class Batch:
    lines: list[tuple[Any, ...]] = field(default_factory=list)
    left_out: list[tuple[Any, ...]] = field(default_factory=list)
    arithmetics: dict[UUID, Arithmetic] = field(default_factory=dict)  # those the lines name

    def arithmetic_rows(self, run_id: UUID) -> list[tuple[Any, ...]]:
        """Rows of run_arithmetics (store.ARITHMETIC_COLUMNS order)."""
        return [(run_id, a.arithmetic_id, a.terms, a.explanation) for a in self.arithmetics.values()]


def assess_batch(
    calculator: Calculator,
    run: RunSpec,
    history: domain.History,
    rows: list[asyncpg.Record],
    totals: domain.Totals,
) -> Batch:
    batch = Batch()
    payment_id = domain.payment_ids(run.programme_code, run.period)
    for row in rows:
        candidate = domain.Candidate(row["household_id"], row["eligible"], row["reasons"], row)
        outcome = domain.assess(calculator, run.period, run.rules_day, candidate, history)
        if isinstance(outcome, domain.LeftOut):
            reason = str(outcome.reason)  # a plain str: StrEnum keys don't serialise as json keys
            batch.left_out.append((run.run_id, outcome.household_id, reason, outcome.detail))
            totals.left_out[reason] += 1
        else:
            totals.add(outcome)
            batch.lines += line_rows(run, outcome, payment_id, batch.arithmetics)
    return batch


def line_rows(
    run: RunSpec,
    planned: domain.Planned,
    payment_id: domain.PaymentIds,
    arithmetics: dict[UUID, Arithmetic],
) -> list[tuple[Any, ...]]:
    """Rows of payment_lines (store.LINE_COLUMNS order) for a household the run pays; the
    arithmetics they name are added to ``arithmetics``."""
    household = planned.household
    rows = []
    for line, attempt in planned.lines:
        arithmetic = arithmetic_of(line.terms, line.explanation)
        arithmetics[arithmetic.arithmetic_id] = arithmetic
        rows.append(
            (
                payment_id(household.household_id, line.component, attempt),
                run.run_id,
                run.programme_code,
                run.period,
                household.household_id,
                str(line.component),
                attempt,
                line.amount_riel,
                arithmetic.arithmetic_id,
                household.province_code,
                household.commune_code,
                household.village_code,
                planned.location_category,
                str(household.poverty_level),
                planned.payee.name,
                planned.payee.channel,
                planned.payee.account,
                "CALCULATED",
            )
        )
    return rows


@functools.lru_cache(maxsize=4096)
def arithmetic_of(terms: tuple[Term, ...], explanation: str) -> Arithmetic:
    """The arithmetic of a line, its id made from its content. Households of a run share a few
    thousand at most (the same rates, members and vulnerable members): each is built once."""
    text = orjson.dumps([{"label": t[0], "quantity": t[1], "unit_rate": t[2], "amount": t[3]} for t in terms])
    digest = hashlib.md5(text + b"|" + explanation.encode(), usedforsecurity=False).digest()
    return Arithmetic(UUID(bytes=digest), text.decode(), explanation)
