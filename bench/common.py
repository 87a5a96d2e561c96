"""Shared pieces of the benchmarks: the machine, timing, the results file."""

import contextlib
import os
import platform
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "bench-data"
RESULTS = ROOT / "docs" / "benchmarks.md"


def machine() -> str:
    cpu = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    memory = f"{mem_kb / 2**20:.0f} GiB RAM"
    return f"{os.cpu_count()} cores ({cpu}), {memory}, {platform.system()}; load average before: {load}"


# --- CPU time of the processes a benchmark runs, apart from whatever else the machine runs -------

_TICK = os.sysconf("SC_CLK_TCK")


def _processes() -> Iterator[tuple[int, int, str, float, float]]:
    """(pid, parent pid, command line, CPU seconds, CPU seconds of its children that have ended)
    of every process."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue  # gone meanwhile
        fields = stat[stat.rindex(")") + 2 :].split()
        own, ended = int(fields[11]) + int(fields[12]), int(fields[13]) + int(fields[14])
        yield int(entry.name), int(fields[1]), cmdline, own / _TICK, ended / _TICK


@dataclass
class CpuMeter:
    """CPU seconds used by named groups of processes: ``trees`` are process ids whose descendants
    count too (a service and its worker processes), ``titles`` match command lines (PostgreSQL's
    backends name their database in their title). On a machine that also runs other work, the
    wall time of a stage says how long it took; this says what it cost."""

    trees: dict[str, int] = field(default_factory=dict)
    titles: dict[str, tuple[str, ...]] = field(default_factory=dict)
    interval: float = 1.0

    def sample(self) -> dict[str, dict[int, float]]:
        """Each group's CPU seconds so far, by process: a tree's under its root (its ended worker
        processes included), each process a title matches under its own id."""
        processes = list(_processes())
        children: dict[int, list[int]] = {}
        for pid, parent, *_ in processes:
            children.setdefault(parent, []).append(pid)
        # A tree's processes, and those of its that have ended (worker processes of a pool).
        cpu = {pid: own + ended for pid, _, _, own, ended in processes}
        used = {
            name: {root: sum(cpu.get(pid, 0.0) for pid in _tree(root, children))}
            for name, root in self.trees.items()
        }
        for name, needles in self.titles.items():
            used[name] = {pid: own for pid, _, line, own, _ in processes if all(n in line for n in needles)}
        return used

    @contextmanager
    def measuring(self) -> Iterator[dict[str, float]]:
        """The CPU seconds each group uses while the ``with`` lasts, filled in at its end. Sampled
        every ``interval`` seconds meanwhile: a process that ends before the end (a PostgreSQL
        backend whose connection closed) still counts what it used until its last sample."""
        before = self.sample()
        latest = {name: dict(pids) for name, pids in before.items()}
        stop = threading.Event()

        def keep_sampling() -> None:
            while not stop.wait(self.interval):
                for name, pids in self.sample().items():
                    latest[name].update(pids)

        sampler = threading.Thread(target=keep_sampling, daemon=True)
        sampler.start()
        used: dict[str, float] = {}
        try:
            yield used
        finally:
            stop.set()
            sampler.join()
            for name, pids in self.sample().items():
                latest[name].update(pids)
            for name, pids in latest.items():
                used[name] = sum(seconds - before[name].get(pid, 0.0) for pid, seconds in pids.items())


def _tree(root: int, children: dict[int, list[int]]) -> Iterator[int]:
    """``root`` and every process descended from it."""
    todo = [root]
    while todo:
        pid = todo.pop()
        yield pid
        todo += children.get(pid, [])


_PAGE = os.sysconf("SC_PAGE_SIZE")


def _resident_bytes(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * _PAGE
    except (OSError, IndexError):
        return 0  # gone meanwhile


@dataclass
class PeakMemory:
    """The highest resident memory each process tree (a service with its worker processes, summed)
    reached, sampled every ``interval`` seconds in a thread of its own while the ``with`` lasts."""

    trees: dict[str, int]
    interval: float = 0.5
    peaks: dict[str, int] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)

    def sample(self) -> None:
        children: dict[int, list[int]] = {}
        for pid, parent, *_ in _processes():
            children.setdefault(parent, []).append(pid)
        for name, root in self.trees.items():
            resident = sum(_resident_bytes(pid) for pid in _tree(root, children))
            self.peaks[name] = max(self.peaks.get(name, 0), resident)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def __enter__(self) -> "PeakMemory":
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()

    def summary(self) -> str:
        return ", ".join(f"{name} {peak / 2**20:,.0f} MiB" for name, peak in self.peaks.items())


@dataclass
class Stage:
    name: str
    seconds: float
    items: int
    unit: str
    note: str = ""
    cpu: dict[str, float] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.items / self.seconds if self.seconds else 0.0


def cpu_jiffies() -> tuple[int, int]:
    """(stolen, all) clock ticks of the machine's CPUs so far (/proc/stat): the ticks a virtual
    machine's host gave to others while this one was ready to run are time no code here can win."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return values[7], sum(values[:8])


def stolen_share(before: tuple[int, int], after: tuple[int, int]) -> float:
    ticks = after[1] - before[1]
    return (after[0] - before[0]) / ticks if ticks else 0.0


@dataclass
class Report:
    title: str
    command: str
    stages: list[Stage] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    meter: CpuMeter | None = None

    @contextmanager
    def stage(self, name: str, items: int, unit: str, note: str = "") -> Iterator[Stage]:
        """Time a stage; with a ``meter``, its note says the CPU seconds each group used in it and
        the load average (1 min) at its end."""
        jiffies = cpu_jiffies()
        started = time.perf_counter()
        stage = Stage(name, 0.0, items, unit, note)
        with self.meter.measuring() if self.meter else contextlib.nullcontext({}) as cpu:
            yield stage
        stage.seconds = time.perf_counter() - started
        if self.meter is not None:
            stage.cpu = cpu
            used = ", ".join(f"{k} {v:.1f}" for k, v in stage.cpu.items())
            stage.note = "; ".join(
                p
                for p in (
                    stage.note,
                    f"CPU s: {used}; load {os.getloadavg()[0]:.1f};"
                    f" stolen {stolen_share(jiffies, cpu_jiffies()):.0%}",
                )
                if p
            )
        self.stages.append(stage)
        print(f"  {name}: {stage.seconds:.1f} s, {stage.rate:,.0f} {unit}/s {stage.note}", flush=True)

    def markdown(self) -> str:
        rows = [
            f"| {s.name} | {s.items:,} {s.unit} | {s.seconds:.1f} s | {s.rate:,.0f} {s.unit}/s | {s.note} |"
            for s in self.stages
        ]
        return "\n".join(
            [
                f"## {self.title}",
                "",
                f"- Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; commit {_commit()}",
                f"- Machine: {machine()}",
                f"- Command: `{self.command}`",
                "",
                "| stage | volume | time | throughput | note |",
                "|---|---:|---:|---:|---|",
                *rows,
                "",
                *[f"- {n}" for n in self.notes],
                "",
            ]
        )


def _commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def write_section(report: Report) -> None:
    """Replace (or add) this report's section in docs/benchmarks.md (not with KROUSAR_BENCH_NO_WRITE=1:
    a trial run while developing)."""
    if os.environ.get("KROUSAR_BENCH_NO_WRITE") == "1":
        print(report.markdown())
        return
    header = (
        "# Benchmarks\n\nMeasured by `make bench` on the project's own machine; rerun it to reproduce.\n\n"
    )
    text = RESULTS.read_text() if RESULTS.exists() else header
    start = text.find(f"## {report.title}\n")
    if start >= 0:
        end = text.find("\n## ", start + 1)
        text = text[:start] + report.markdown() + ("\n" + text[end + 1 :] if end >= 0 else "")
    else:
        text = text.rstrip("\n") + "\n\n" + report.markdown()
    RESULTS.write_text(text)
