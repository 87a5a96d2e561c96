"""Every metric the services declare follows the conventions of docs/monitoring.md: the krousar_
prefix, base units, bounded labels (never a commune, village, household or person), HIV by province
only, and a row in the docs' table of metrics."""

import importlib
import re
from pathlib import Path
from typing import Any

import pytest
from krousar_common.metrics import DatabaseGauges
from prometheus_client import REGISTRY
from prometheus_client.metrics import MetricWrapperBase

ROOT = Path(__file__).resolve().parents[2]
METRICS_MODULES = [
    "krousar_common.metrics",
    *(f"{path.parent.name}.metrics" for path in sorted((ROOT / "services").glob("*/*/metrics.py"))),
]
# Every label a metric may carry, each with a small fixed set of values (province: 25; programme:
# the programme catalogue; period: one current payment per programme).
BOUNDED_LABELS = {
    "service", "topic", "type", "outcome", "method", "route", "status", "trigger", "kind",
    "province", "poverty_level", "card_status", "head_sex", "sex", "category",
    "programme", "period", "stage", "state",
}  # fmt: skip
UNBOUNDED = re.compile(r"commune|village|district|household|member|person|national_id|name|account|id$")
MONITORING_DOC = ROOT / "docs" / "monitoring.md"


def declared() -> dict[str, dict[str, Any]]:
    """name (as exposed, counters with _total) → kind and label names, of every Krousar metric."""
    for module in METRICS_MODULES:
        importlib.import_module(module)
    found = {}
    for collector in list(REGISTRY._collector_to_names):  # prometheus_client keeps no public list
        if isinstance(collector, DatabaseGauges):
            found[collector.name] = {"kind": "gauge", "labels": list(collector.labels)}
        elif isinstance(collector, MetricWrapperBase):
            kind = collector._type
            name = collector._name + ("_total" if kind == "counter" else "")
            found[name] = {"kind": kind, "labels": list(collector._labelnames)}
    return found


METRICS = declared()


def test_every_service_metrics_module_is_seen() -> None:
    services = {p.name for p in (ROOT / "services").iterdir() if (p / p.name / "metrics.py").exists()}
    assert {m.split(".")[0] for m in METRICS_MODULES} >= services
    assert len(METRICS) > 20


@pytest.mark.parametrize("name", sorted(METRICS))
def test_names_use_the_prefix_and_base_units(name: str) -> None:
    metric = METRICS[name]
    assert name.startswith("krousar_"), name
    assert (metric["kind"] == "counter") == name.endswith("_total"), name
    if re.search(r"duration|latency|_age", name):
        assert name.endswith("_seconds"), f"{name}: durations in seconds"
    if "riel" in name or "amount" in name:
        assert name.endswith("_riel"), f"{name}: money in riel, named _riel"
    assert not re.search(r"_(ms|milliseconds|minutes|usd|khr)(_|$)", name), name


@pytest.mark.parametrize("name", sorted(METRICS))
def test_labels_are_bounded(name: str) -> None:
    labels = set(METRICS[name]["labels"])
    assert not {label for label in labels if UNBOUNDED.search(label)}, f"{name}: unbounded label"
    assert labels <= BOUNDED_LABELS, f"{name}: new labels {labels - BOUNDED_LABELS} (bounded? add them here)"


def test_hiv_is_counted_by_province_only() -> None:
    from registration import metrics

    # (province, sex, children, elderly, disability, hiv), as VULNERABLE_SQL returns them
    rows = [("12", "F", 1, 2, 0, 3), ("12", "M", 4, 0, 1, 2), ("01", "F", 0, 1, 0, 0)]
    samples = dict(metrics.vulnerable_samples(rows))
    assert samples[("12", "hiv", "")] == 5 and samples[("01", "hiv", "")] == 0
    assert not [key for key in samples if key[1] == "hiv" and key[2]], "HIV never split by sex"
    assert samples[("12", "elderly_60_plus", "F")] == 2 and samples[("12", "child_under_5", "M")] == 4
    hiv_metrics = [n for n in METRICS if "vulnerable" in n]
    assert hiv_metrics == ["krousar_registry_vulnerable_members"]
    assert set(METRICS[hiv_metrics[0]]["labels"]) == {"province", "category", "sex"}


@pytest.mark.parametrize("name", sorted(METRICS))
def test_every_metric_is_documented(name: str) -> None:
    assert f"`{name}`" in MONITORING_DOC.read_text(), f"{name} has no row in docs/monitoring.md"
