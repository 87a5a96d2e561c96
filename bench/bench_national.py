"""Benchmark: the national caseload through the whole pipeline, beside the physical floor.

    python -m bench.bench_national --households 705487

One synthetic caseload (``registration.synthetic``, seed 2023: 705,487 households, about 2.78
million members, shares of DOMAIN.md §8) goes through every service as in March 2023: the bulk
import (registration API) → assessments, cards and their events on Kafka → eligibility projects
and decides every household → enrolment → the evaluation of 2023-03-15 → payments' projection of
the decisions → one COVID19_CT run for 2023-03 → the PSP simulator → RECONCILED.

The services work side by side (eligibility consumes while the import still runs): each stage is
timed from the end of the one before to the moment its last piece is done. The floor is measured in
the same run, after the pipeline: PostgreSQL COPY of the rows each stage wrote plus Kafka's
ProducerPerformance for the events it published (``FLOORS``).
"""

import argparse
import asyncio
import os
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import date
from typing import Any

import asyncpg
import httpx
import orjson
from krousar_common import topics
from krousar_common.testing import ServiceProcess, TestStack, bearer, wait_for
from registration import synthetic

from bench import bench_payments, eligibility_data
from bench.common import CpuMeter, PeakMemory, Report, Stage, write_section
from bench.floors import average_record_size, copy_floor, kafka_producer_floor

DAY = date(2023, 3, 15)  # COVID19_CT running; the caseload interviewed (cards issued) on 2023-03-01
VERIFIED_ON = date(2023, 3, 10)
PERIOD = "2023-03"
SERVICES = ("registration", "topups", "eligibility", "payments", "psp_simulator")
ADMIN = bearer("bench", "registry_admin")
MANAGER = bearer("bench-manager", "programme_manager")
LONG = 3600  # seconds any one stage may take before the benchmark gives up


async def run(households: int, seed: int) -> Report:
    report = Report(
        f"National pipeline, {households:,} households: import to a reconciled COVID19_CT run",
        f"python -m bench.bench_national --households {households}",
    )
    csv = eligibility_data.csv_path(households, seed)
    if not csv.exists():
        csv.parent.mkdir(exist_ok=True)
        with report.stage(
            "generate the synthetic CSV (cached, not in the pipeline)", households, "households"
        ):
            stats = synthetic.write_csv(csv, households, seed=seed, workers=2)
        report.notes.append(f"Synthetic caseload: {stats}")
    stack = TestStack()
    await stack.check_reachable()
    await stack.create_topics()
    processes = await _start(stack)
    pids = {name: p.process.pid for name, p in processes.items()}  # type: ignore[union-attr]
    report.meter = CpuMeter(
        trees=pids, titles={"PostgreSQL": ("postgres: ", f"_t{stack.run_id}"), "Kafka": ("kafka.Kafka",)}
    )
    try:
        with PeakMemory(pids) as memory:
            pipeline = Pipeline(stack, processes, report, households)
            await pipeline.run(csv)
        await _floors(report, stack, pipeline)
    finally:
        for process in processes.values():
            process.stop()
        await stack.drop()
    report.notes.append(f"Peak resident memory (each service with its worker processes): {memory.summary()}.")
    _summarise(report, pipeline)
    return report


async def _start(stack: TestStack) -> dict[str, ServiceProcess]:
    env: dict[str, dict[str, str]] = {
        "psp_simulator": {
            "PSP_DATABASE": stack.database("psp_simulator"),
            "PSP_SETTLE_DELAY_SECONDS": "0",
            "PSP_UNCLAIMED_DELAY_SECONDS": "1",
        }
    }
    processes = {name: ServiceProcess(name, stack, **env.get(name, {})) for name in SERVICES}
    await asyncio.gather(*(p.start(timeout=120) for p in processes.values()))
    return processes


class Pipeline:
    """The stages, in order, against running services; what they did is kept for the floors."""

    def __init__(
        self, stack: TestStack, processes: dict[str, ServiceProcess], report: Report, households: int
    ) -> None:
        self.stack, self.processes, self.report, self.households = stack, processes, report, households
        self.db: dict[str, asyncpg.Connection] = {}
        self.payment_run: dict[str, Any] = {}
        self.eligible = 0
        self.stage_of: dict[str, Stage] = {}
        self.events: dict[str, int] = {}  # events published by the stages of PUBLISHED
        # Rows a stage wrote to a table that later stages write to as well (stage, service, table):
        # its floor is that share of the table's COPY.
        self.rows_written: dict[tuple[str, str, str], int] = {}

    async def run(self, csv: Any) -> None:
        for name in ("registration", "eligibility", "payments"):
            self.db[name] = await self.stack.connect(name)
        try:
            await self._programmes()
            before = await self.events_so_far("registration")
            await self._import(csv)
            self.events["registry events"] = await self.events_so_far("registration") - before
            await self._decisions()
            await self._payment_run()
        finally:
            for conn in self.db.values():
                await conn.close()

    @contextmanager
    def stage(self, key: str, name: str, items: int, unit: str) -> Iterator[Stage]:
        """``report.stage``, remembered under ``key`` for the floors."""
        with self.report.stage(name, items, unit) as stage:
            self.stage_of[key] = stage
            yield stage

    async def events_so_far(self, service: str) -> int:
        """Every event the service's outbox has held (the relay deletes the rows it has sent)."""
        return await self.db[service].fetchval("SELECT coalesce(pg_sequence_last_value('outbox_id_seq'), 0)")

    async def until(self, check: Callable[[], Awaitable[bool]], what: str) -> None:
        await wait_for(check, timeout=LONG, interval=1, what=what)

    # --- the stages --------------------------------------------------------------------------------

    async def _programmes(self) -> None:
        with self.stage("setup", "setup: programmes seeded by topups, held day set", 1, "day"):
            await self.until(self._programme_known, "COVID19_CT known to eligibility and payments")
            await self._evaluate()  # holds eligibility's clock at DAY before any household arrives

    async def _programme_known(self) -> bool:
        in_eligibility = await self.db["eligibility"].fetchval(
            "SELECT count(*) FROM programmes WHERE code = 'COVID19_CT'"
        )
        in_payments = await self.db["payments"].fetchval(
            "SELECT count(*) FROM programme_versions WHERE code = 'COVID19_CT'"
        )
        return bool(in_eligibility and in_payments)

    async def _import(self, csv: Any) -> None:
        registration = self.processes["registration"]
        async with httpx.AsyncClient(base_url=registration.url, timeout=LONG) as client:
            with self.stage(
                "import", "import: parse, validate, score, COPY, outbox", self.households, "households"
            ) as stage:
                response = await client.post(
                    "/v1/imports",
                    params={"wait": "true", "file_name": csv.name},
                    content=csv.read_bytes(),
                    headers={**ADMIN, "Content-Type": "text/csv"},
                )
                result = response.json()
                stage.note = f"imported {result.get('households_imported', 0):,}"
        assert response.status_code == 200 and result["status"] == "SUCCEEDED", result
        with self.stage(
            "registry events",
            "registration relay: the last registry event on Kafka",
            self.households,
            "households",
        ):
            await self.until(lambda: _empty(self.db["registration"], "outbox"), "registration's outbox sent")
        with self.stage(
            "projection",
            "eligibility: every household projected and decided on arrival, its decisions in payments",
            self.households,
            "households",
        ):
            await self.until(self._all_projected, "every household in eligibility, nothing pending")
            await self.until(self._arrival_decisions_in_payments, "the arrival decisions in payments")
        for table in ("decisions", "decided_households"):
            rows = await self.db["payments"].fetchval(f"SELECT count(*) FROM {table}")
            self.rows_written["projection", "payments", table] = rows

    async def _all_projected(self) -> bool:
        """Every registry event applied (eligibility's commits), then nothing queued (the queue is
        filled in the transaction of the events that fill it), then the count, once: a count of
        700,000 households every second would cost PostgreSQL a third of a core."""
        conn = self.db["eligibility"]
        if not await self._caught_up("eligibility.households", topics.HOUSEHOLDS):
            return False
        if not await _empty(conn, "pending"):
            return False
        return await conn.fetchval("SELECT count(*) FROM households") == self.households

    async def _arrival_decisions_in_payments(self) -> bool:
        return await _empty(self.db["eligibility"], "outbox") and await self._caught_up(
            "payments.decisions", topics.DECISIONS
        )

    async def _caught_up(self, group: str, topic: topics.Topic) -> bool:
        return await self.stack.caught_up(self.stack.group(group), self.stack.topic(topic.name))

    async def _decisions(self) -> None:
        before = await self.events_so_far("eligibility")
        self.events["arrival decisions"] = before
        with self.stage(
            "enrolment",
            "enrolment: COPY of every household's verified payee (setup)",
            self.households,
            "households",
        ):
            await self._enrol_everyone()
        with self.stage(
            "evaluation",
            f"eligibility: evaluation of {DAY} with the enrolments",
            self.households,
            "households",
        ) as stage:
            evaluation = await self._evaluate()
            stage.note = f"{evaluation['decisions_changed']:,} decisions changed"
        self.eligible = await self.db["eligibility"].fetchval(
            "SELECT count(*) FROM decisions WHERE programme_code = 'COVID19_CT' AND eligible"
        )
        with self.stage(
            "decision events",
            "decisions to payments: eligibility relay, payments projection",
            self.eligible,
            "households",
        ):
            await self.until(self._payments_projected, "every eligible COVID19_CT decision in payments")
        self.events["decision events"] = await self.events_so_far("eligibility") - before

    async def _enrol_everyone(self) -> None:
        conn = self.db["eligibility"]
        async with conn.transaction():
            rows = []
            async for record in conn.cursor("SELECT snapshot::text FROM households", prefetch=10_000):
                rows.append(eligibility_data.enrolment_row(orjson.loads(record[0]), VERIFIED_ON))
            await conn.copy_records_to_table(
                "enrolments", records=rows, columns=eligibility_data.ENROLMENT_COLUMNS
            )
        await conn.execute("ANALYZE enrolments")

    async def _evaluate(self) -> dict[str, Any]:
        """An evaluation of DAY through the API, followed until it is done."""
        eligibility = self.processes["eligibility"]
        async with eligibility.client() as client:
            requested = await client.post("/v1/evaluations", json={"on": DAY.isoformat()}, headers=MANAGER)
            assert requested.status_code == 202, requested.text
            path = f"/v1/evaluations/{requested.json()['run_id']}"

            async def done() -> dict[str, Any] | None:
                evaluation = (await client.get(path, headers=MANAGER)).json()
                assert evaluation["status"] != "FAILED", evaluation
                return evaluation if evaluation["status"] == "DONE" else None

            return await wait_for(done, timeout=LONG, interval=1, what=f"the evaluation of {DAY}")

    async def _payments_projected(self) -> bool:
        """Every decision on Kafka, then every one applied by payments, then the count, once (of
        2.1 million rows: a second of PostgreSQL's time each, were it polled every second)."""
        if not await _empty(self.db["eligibility"], "outbox"):
            return False
        if not await self._caught_up("payments.decisions", topics.DECISIONS):
            return False
        paid_for = await self.db["payments"].fetchval(
            "SELECT count(*) FROM decisions WHERE programme_code = 'COVID19_CT' AND eligible"
        )
        return paid_for == self.eligible

    async def _payment_run(self) -> None:
        payments = self.processes["payments"]
        before = await self.events_so_far("payments")
        async with httpx.AsyncClient(base_url=payments.url, timeout=LONG) as client:
            with self.stage("calculation", "run: create + calculate + store", self.eligible, "households"):
                run = await bench_payments.calculate(client, PERIOD)
            with self.stage("instruction", "run: approve + instruct", run["lines"], "payments"):
                await bench_payments.instruct(client, run)
            with self.stage(
                "instruction events",
                "payments relay: the last instruction on Kafka",
                run["lines"],
                "payments",
            ):
                await self.until(
                    lambda: bench_payments.all_published(self.db["payments"]), "payments' events sent"
                )
            with self.stage(
                "reconciliation", "PSP settles every payment, run RECONCILED", run["lines"], "payments"
            ):
                await self.until(
                    lambda: bench_payments.reconciled(self.stack, run["run_id"]), "the run RECONCILED"
                )
        self.payment_run = run
        # Instructions are published from the lines, the run's state changes from the outbox.
        self.events["instruction events"] = run["lines"] + await self.events_so_far("payments") - before
        self.events["status events"] = run["lines"]  # the PSP's final word on each payment


async def _empty(conn: asyncpg.Connection, table: str) -> bool:
    """Whether a queue table (outbox, pending) is empty, read on its id index: a scan of the heap
    would read every row its consumer has deleted and vacuum has not yet removed."""
    return await conn.fetchval(f"SELECT id FROM {table} ORDER BY id LIMIT 1") is None


# --- the floor -------------------------------------------------------------------------------------

# A stage's floor is what the storage and the broker alone take for the work it did: the COPY of
# every row our services wrote in it (each one's tables; not the outboxes, whose events the
# producer's floor stands for, nor the PSP simulator's, which stands for another party) plus Kafka's
# ProducerPerformance sending as many events of the same size as it published. Stages that run
# side by side are compared together: the relay's with the stage that wrote its outbox, payments'
# projection with the evaluation it consumes.
FLOORS: dict[tuple[str, ...], tuple[list[tuple[str, str]], list[str]]] = {
    ("import", "registry events"): (
        [("registration", t) for t in ("households", "members", "assessments", "cards", "audit_log")],
        ["registry events"],
    ),
    ("projection",): (
        [
            ("eligibility", "households"),
            ("eligibility", "decisions"),
            ("payments", "decisions"),
            ("payments", "decided_households"),
        ],
        ["arrival decisions"],
    ),
    ("evaluation", "decision events"): (
        [("eligibility", "decisions"), ("payments", "decisions")],
        ["decision events"],
    ),
    ("calculation",): ([("payments", "payment_lines")], []),
    ("instruction", "instruction events"): (
        [("payments", "instructions"), ("eligibility", "payment_instructions")],
        ["instruction events"],
    ),
    ("reconciliation",): (
        [("payments", "line_outcomes"), ("eligibility", "payment_statuses")],
        ["status events"],
    ),
}
TOPIC_OF = {
    "registry events": topics.HOUSEHOLDS,
    "arrival decisions": topics.DECISIONS,
    "decision events": topics.DECISIONS,
    "instruction events": topics.INSTRUCTIONS,
    "status events": topics.STATUSES,
}


async def _floors(report: Report, stack: TestStack, pipeline: Pipeline) -> None:
    report.meter = None  # the floor's own CPU is not the pipeline's
    copied: dict[tuple[str, str], tuple[float, int]] = {}
    for service, table in dict.fromkeys(t for tables, _ in FLOORS.values() for t in tables):
        conn = await stack.connect(service)
        try:
            seconds, rows = await copy_floor(conn, [table])
        finally:
            await conn.close()
        copied[service, table] = seconds, rows
        report.stages.append(Stage(f"floor: COPY of {service}'s {table}", seconds, rows, "rows"))
    produced: dict[str, float] = {}
    for key, topic in TOPIC_OF.items():
        events = pipeline.events[key]
        size = await average_record_size(stack.kafka_bootstrap, stack.topic(topic.name))
        produced[key], _ = kafka_producer_floor(stack.kafka_bootstrap, stack.topic(topic.name), events, size)
        name = f"floor: Kafka ProducerPerformance, {key} ({size} B records)"
        report.stages.append(Stage(name, produced[key], events, "events"))
    ratios = []
    for stages, (tables, published) in FLOORS.items():
        ours = sum(pipeline.stage_of[k].seconds for k in stages)
        copies = {t: _copy_share(copied[t], pipeline.rows_written.get((stages[0], *t))) for t in tables}
        parts = [f"COPY {service}.{table} {copies[service, table]:.1f}" for service, table in tables]
        parts += [f"{pipeline.events[key]:,} {key} {produced[key]:.1f}" for key in published]
        floor = sum(copies.values()) + sum(produced[key] for key in published)
        ratios.append(
            f"{' + '.join(stages)}: {ours:.1f} s / {floor:.1f} s ({', '.join(parts)}) = {ours / floor:.1f}x"
        )
    report.notes.append("Stage / its floor (goal: within 3x): " + "; ".join(ratios) + ".")


def _copy_share(copied: tuple[float, int], rows_written: int | None) -> float:
    """The COPY seconds of the rows a stage wrote (None: the whole table, as it was at the end)."""
    seconds, rows = copied
    return seconds if rows_written is None or not rows else seconds * min(rows_written, rows) / rows


def _summarise(report: Report, pipeline: Pipeline) -> None:
    run = pipeline.payment_run
    stages = [s for s in report.stages if not s.name.startswith(("floor:", "generate", "setup", "enrolment"))]
    pipeline_seconds = sum(s.seconds for s in stages)
    everything = pipeline_seconds + pipeline.stage_of["enrolment"].seconds
    report.notes += [
        f"The run: {run['households']:,} households, {run['lines']:,} payment lines,"
        f" {run['amount_riel']:,} riel.",
        f"Whole pipeline, import to RECONCILED: {everything:.1f} s"
        f" ({pipeline_seconds:.1f} s without the enrolment COPY) ="
        f" {pipeline.households / everything:,.0f} households/s.",
        "Enrolment has no bulk path in the product (commune staff enrol households one by one at the"
        " commune hall, over months): the benchmark COPies one verified enrolment per household.",
        f"Machine: {os.cpu_count()} cores shared by the 5 services, PostgreSQL, Redis and the broker;"
        " CPU seconds of each in each stage's note.",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--households", type=int, default=synthetic.CASELOAD_HOUSEHOLDS)
    parser.add_argument("--seed", type=int, default=2023)
    args = parser.parse_args()
    started = time.perf_counter()
    report = asyncio.run(run(args.households, args.seed))
    report.notes.append(f"The benchmark took {time.perf_counter() - started:.0f} s in all, floors included.")
    write_section(report)


if __name__ == "__main__":
    main()
