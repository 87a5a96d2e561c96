"""The reconciliation report of a run: expected, paid, failed, unclaimed and pending amounts (riel)
and households, by province, location category and poverty level, with roll-ups and a total."""

import csv
import io
from collections.abc import Iterable, Mapping
from typing import Any

MEASURES = ("expected", "paid", "failed", "unclaimed", "pending")
VALUES = [f"{m}_{unit}" for m in MEASURES for unit in ("riel", "households")]
DIMENSIONS = ("province_code", "location_category", "poverty_level")


def _sum(rows: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """Households add up across groups: a household is in exactly one (province, category, level)."""
    total = dict.fromkeys(VALUES, 0)
    for row in rows:
        for name in VALUES:
            total[name] += row[name]
    return total


def _by(rows: list[dict[str, Any]], dimension: str) -> list[dict[str, Any]]:
    keys = sorted({r[dimension] for r in rows})
    return [{dimension: k, **_sum(r for r in rows if r[dimension] == k)} for k in keys]


def build(run: Mapping[str, Any], groups: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    rows = [dict(g) for g in groups]
    return {
        "run_id": str(run["run_id"]),
        "programme_code": run["programme_code"],
        "period": run["period"],
        "state": run["state"],
        "total": _sum(rows),
        "by_group": rows,
        **{f"by_{d.removesuffix('_code')}": _by(rows, d) for d in DIMENSIONS},
    }


def to_csv(report: Mapping[str, Any]) -> str:
    """One row per (province, category, level) and a TOTAL row."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=["run_id", *DIMENSIONS, *VALUES], lineterminator="\n")
    writer.writeheader()
    for row in report["by_group"]:
        writer.writerow({"run_id": report["run_id"], **row})
    writer.writerow({"run_id": report["run_id"], "province_code": "TOTAL", **report["total"]})
    return out.getvalue()
