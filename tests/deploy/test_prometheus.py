"""The Prometheus config, rules and their unit tests pass promtool, and every metric that a rule
or a dashboard queries exists: recorded by a rule, declared in the project's Python, or made by
Prometheus itself."""

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = ROOT / "deploy/prometheus"
CONFIGS = sorted(PROMETHEUS.glob("prometheus*.yml"))
RULE_FILES = sorted((PROMETHEUS / "rules").glob("*.yml"))
TEST_FILES = sorted((PROMETHEUS / "tests").glob("*.yml"))
DASHBOARDS = sorted((ROOT / "deploy/grafana/dashboards").glob("*.json"))
RUNBOOK = ROOT / "docs/monitoring.md"

# Series Prometheus writes itself, not scraped from a service.
PROMETHEUS_SERIES = {
    "up",
    "scrape_duration_seconds",
    "scrape_samples_scraped",
    "scrape_samples_post_metric_relabeling",
    "scrape_series_added",
    "ALERTS",
    "ALERTS_FOR_STATE",
}
# The series each kind of prometheus_client metric exposes, from its declared name.
EXPOSED_SUFFIXES = {
    "Counter": ("_total", "_created"),
    "Gauge": ("",),
    "Histogram": ("_bucket", "_sum", "_count", "_created"),
    "Summary": ("", "_sum", "_count", "_created"),
    "Info": ("_info",),
    "Enum": ("",),
    "GaugeHistogram": ("_bucket", "_gsum", "_gcount"),
    "StateSet": ("",),
}
# prometheus_client's classes, their *MetricFamily forms for custom collectors, and the project's
# wrappers named after them (krousar_common.metrics.DatabaseGauges).
DECLARATION = re.compile(
    r"\b\w*?(Counter|GaugeHistogram|Gauge|Histogram|Summary|Info|Enum|StateSet)s?(?:MetricFamily)?\(\s*"
    r"(?:name\s*=\s*)?[\"']([a-zA-Z_:][a-zA-Z0-9_:]*)[\"']"
)
PROMQL_KEYWORDS = {
    "and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring",
    "group_left", "group_right", "atan2", "inf", "nan",
}  # fmt: skip


def promtool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("promtool")
    if binary is None:
        pytest.fail("promtool not found: install the Debian 'prometheus' package (deploy/local/install.sh)")
    return subprocess.run(
        [binary, *map(str, args)], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )


def load_rules() -> list[dict[str, Any]]:
    return [
        rule
        for path in RULE_FILES
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
    ]


def load_rule_tests() -> list[dict[str, Any]]:
    return [test for path in TEST_FILES for test in yaml.safe_load(path.read_text())["tests"]]


def declared_series() -> set[str]:
    """Series the project's Python exposes, from its prometheus_client declarations."""
    series = set(PROMETHEUS_SERIES)
    for path in [*(ROOT / "libs").rglob("*.py"), *(ROOT / "services").rglob("*.py")]:
        if "tests" in path.parts or path.name.startswith("test_"):
            continue
        for kind, name in DECLARATION.findall(path.read_text(encoding="utf-8", errors="replace")):
            base = name.removesuffix("_total") if kind == "Counter" else name
            series.update(base + suffix for suffix in EXPOSED_SUFFIXES[kind])
    return series


def recorded_series() -> set[str]:
    return {rule["record"] for rule in load_rules() if "record" in rule}


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (Grafana variables allowed)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""', expr)
    text = re.sub(r"\$\{[^}]*\}|\$\w+", " ", text)
    text = re.sub(r"\{[^}]*\}|\[[^\]]*\]", " ", text)
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = set()
    for token in re.finditer(r"\d[\w.]*|[A-Za-z_:][\w:]*", text):
        word = token.group()
        if word[0].isdigit() or word.lower() in PROMQL_KEYWORDS:
            continue
        if text[token.end() :].lstrip().startswith("("):
            continue  # a function or an aggregation
        names.add(word)
    return names


def dashboard_queries(dashboard: dict[str, Any]) -> list[str]:
    queries = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("expr"), str):
                queries.append(node["expr"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(dashboard.get("panels", []))
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("type") != "query":
            continue
        query = variable.get("query")
        query = query.get("query", "") if isinstance(query, dict) else str(query or "")
        # label_values(selector, label) selects a metric; label_values(label) selects none.
        if match := re.fullmatch(r"\s*label_values\((.*),\s*\w+\s*\)\s*", query):
            queries.append(match.group(1))
        elif not query.strip().startswith("label_values("):
            queries.append(re.sub(r"^\s*query_result\((.*)\)\s*$", r"\1", query))
    return queries


def test_metric_name_extraction() -> None:
    expr = (
        'sum by (service, le) (rate(a_bucket{route=~"/x/{id}"}[5m])) / ignoring(le) group_left '
        'b:c:d offset 1h and on (x) ALERTS{alertstate="firing"} > bool 0.5 or vector(1) '
        "+ max(c_total[$__range] @ start()) - e[1h:5m]"
    )
    assert metric_names(expr) == {"a_bucket", "b:c:d", "ALERTS", "c_total", "e"}


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_config_is_valid(path: Path) -> None:
    result = promtool("check", "config", path)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("path", RULE_FILES, ids=lambda p: p.name)
def test_rules_are_valid(path: Path) -> None:
    result = promtool("check", "rules", path)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("path", TEST_FILES, ids=lambda p: p.name)
def test_rule_unit_tests_pass(path: Path) -> None:
    result = promtool("test", "rules", path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_firing_and_a_quiet_unit_test() -> None:
    cases: dict[str, set[bool]] = {}
    for test in load_rule_tests():
        for case in test.get("alert_rule_test", []):
            cases.setdefault(case["alertname"], set()).add(bool(case.get("exp_alerts")))
    alerts = {rule["alert"] for rule in load_rules() if "alert" in rule}
    missing = {alert for alert in alerts if cases.get(alert) != {True, False}}
    assert not missing, f"alerts without both a firing and a not-firing unit test: {sorted(missing)}"


def test_every_recording_rule_has_a_producing_and_an_empty_unit_test() -> None:
    cases: dict[str, set[bool]] = {}
    records = recorded_series()
    for test in load_rule_tests():
        for case in test.get("promql_expr_test", []):
            for name in metric_names(case["expr"]) & records:
                cases.setdefault(name, set()).add(bool(case.get("exp_samples")))
    missing = {record for record in records if cases.get(record) != {True, False}}
    assert not missing, f"recording rules without both kinds of unit test: {sorted(missing)}"


def test_every_alert_says_what_and_links_its_runbook() -> None:
    for rule in load_rules():
        if "alert" not in rule:
            continue
        annotations = rule.get("annotations", {})
        assert annotations.get("summary") and annotations.get("description"), rule["alert"]
        assert annotations.get("runbook") == f"docs/monitoring.md#{rule['alert'].lower()}", rule["alert"]
        assert rule.get("labels", {}).get("severity") in {"critical", "warning"}, rule["alert"]


def test_runbook_anchors_exist() -> None:
    if not RUNBOOK.exists():
        pytest.skip("docs/monitoring.md not written yet")
    headings = re.findall(r"^#+\s+(.+?)\s*$", RUNBOOK.read_text(), flags=re.MULTILINE)
    anchors = {re.sub(r"[^\w\- ]", "", h).strip().lower().replace(" ", "-") for h in headings}
    alerts = {rule["alert"].lower() for rule in load_rules() if "alert" in rule}
    assert not alerts - anchors, f"no heading in docs/monitoring.md for {sorted(alerts - anchors)}"


def test_rules_query_only_existing_metrics() -> None:
    known = declared_series() | recorded_series()
    unknown = {
        (rule.get("alert") or rule.get("record"), name)
        for rule in load_rules()
        for name in metric_names(rule["expr"])
        if name not in known
    }
    assert not unknown, f"rules query metrics nothing declares: {sorted(unknown)}"


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboards_query_only_existing_metrics(path: Path) -> None:
    known = declared_series() | recorded_series()
    queries = dashboard_queries(json.loads(path.read_text()))
    assert queries, "a dashboard with no queries"
    unknown = {name for query in queries for name in metric_names(query) if name not in known}
    assert not unknown, f"{path.name} queries metrics nothing declares: {sorted(unknown)}"
