"""Shared pieces of the benchmarks: the machine, timing, the results file."""

import os
import platform
import subprocess
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


@dataclass
class Stage:
    name: str
    seconds: float
    items: int
    unit: str
    note: str = ""

    @property
    def rate(self) -> float:
        return self.items / self.seconds if self.seconds else 0.0


@dataclass
class Report:
    title: str
    command: str
    stages: list[Stage] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @contextmanager
    def stage(self, name: str, items: int, unit: str, note: str = "") -> Iterator[Stage]:
        started = time.perf_counter()
        stage = Stage(name, 0.0, items, unit, note)
        yield stage
        stage.seconds = time.perf_counter() - started
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
        text = text[:start] + report.markdown() + (text[end + 1 :] if end >= 0 else "")
    else:
        text = text.rstrip("\n") + "\n\n" + report.markdown()
    RESULTS.write_text(text)
