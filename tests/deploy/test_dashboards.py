"""The Grafana dashboards are well formed (ids, grid, descriptions, variables), drawable by
deploy/grafana/render.py, and explained in docs/monitoring.md with a rendering of each."""

import json
import re
from pathlib import Path
from typing import Any, ClassVar

import pytest

from deploy.grafana import render

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = sorted((ROOT / "deploy/grafana/dashboards").glob("*.json"))
MONITORING_DOC = ROOT / "docs" / "monitoring.md"


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def test_dashboard_uids_and_titles_are_unique() -> None:
    boards = [load(path) for path in DASHBOARDS]
    assert len({b["uid"] for b in boards}) == len({b["title"] for b in boards}) == len(boards)


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_panels_are_described_and_tile_the_grid(path: Path) -> None:
    panels = load(path)["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    taken: set[tuple[int, int]] = set()
    for panel in panels:
        assert panel["title"] and panel.get("description"), f"panel {panel['id']} says what it shows"
        x, y, w, h = (panel["gridPos"][k] for k in "xywh")
        assert x >= 0 and x + w <= 24, panel["title"]
        cells = {(col, row) for col in range(x, x + w) for row in range(y, y + h)}
        assert not cells & taken, f"{panel['title']} overlaps another panel"
        taken |= cells


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_panels_are_drawable(path: Path) -> None:
    for panel in load(path)["panels"]:
        assert panel["type"] in render.PANEL_TYPES, f"{panel['title']}: render.py cannot draw {panel['type']}"
        assert panel["targets"] and all(t.get("expr") and t.get("refId") for t in panel["targets"])
        if panel["type"] in ("table", "barchart"):
            (matrix,) = [t for t in panel.get("transformations", []) if t["id"] == "groupingToMatrix"]
            for target in panel["targets"]:
                grouped = re.findall(r"\bby \(([^)]*)\)", target["expr"])
                outer = {label.strip() for label in grouped[0].split(",")} if grouped else set()
                rows, columns = matrix["options"]["rowField"], matrix["options"]["columnField"]
                assert {rows, columns} <= outer or target["expr"].startswith("krousar:"), panel["title"]


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_variables_are_used_and_defined(path: Path) -> None:
    board = load(path)
    names = {v["name"] for v in board.get("templating", {}).get("list", [])}
    builtin = {"__range", "__rate_interval", "__interval"}
    used = set(re.findall(r"\$\{?(\w+)", json.dumps(board["panels"]))) - builtin
    assert used <= names, f"undefined variables {used - names}"
    assert names <= used | {"service"}, f"variables no panel uses: {names - used}"


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_docs_explain_each_dashboard_with_a_rendering(path: Path) -> None:
    text = MONITORING_DOC.read_text()
    assert f"`{path.name}`" in text, f"docs/monitoring.md does not explain {path.name}"
    assert f"monitoring/{path.stem}.png" in text, f"docs/monitoring.md shows no rendering of {path.name}"
    assert (ROOT / "docs" / "monitoring" / f"{path.stem}.png").is_file()


def test_substitute_replaces_grafana_variables() -> None:
    window = render.Window(end=1_000, seconds=600, rate_interval="20s")
    expr = 'sum(rate(x{a="$programme", b=~"${province}"}[$__rate_interval])) + increase(y[$__range])'
    assert render.substitute(expr, {"programme": "PWYC", "province": ".*"}, window) == (
        'sum(rate(x{a="PWYC", b=~".*"}[20s])) + increase(y[600s])'
    )
    assert render.legend("{{province}} {{ stage }}", {"province": "12", "stage": "paid"}) == "12 paid"
    assert render.legend("__auto", {"__name__": "up", "job": "x"}) == "job=x"


class FakePrometheus:
    """Answers every query with the same few series, carrying every label a panel groups by."""

    LABELS: ClassVar[dict[str, str]] = {
        "province": "12", "stage": "enrolled", "head_sex": "F", "sex": "F", "category": "disability",
        "poverty_level": "POOR_1", "status": "PAID", "state": "APPROVED", "programme": "FAMILY_PACKAGE",
        "period": "2026-11", "job": "eligibility", "service": "eligibility", "topic": "t",
        "outcome": "applied", "route": "/v1/coverage", "alertname": "CoverageDropped",
        "type": "krousar.HouseholdRegistered",
    }  # fmt: skip

    def __init__(self) -> None:
        self.queries: list[str] = []

    def instant(self, query: str, at: float) -> list[dict[str, Any]]:
        self.queries.append(query)
        men = {**self.LABELS, "head_sex": "M"}
        return [{"metric": self.LABELS, "value": [at, "0.75"]}, {"metric": men, "value": [at, "3"]}]

    def range(self, query: str, start: float, end: float, step: float) -> list[dict[str, Any]]:
        self.queries.append(query)
        return [{"metric": self.LABELS, "values": [[start, "1"], [end, "2"]]}]

    def label_values(self, selector: str, label: str) -> list[str]:
        return ["FAMILY_PACKAGE", "PWYC"]


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_render_draws_every_panel(path: Path, tmp_path: Path) -> None:
    source = FakePrometheus()
    out = render.render(load(path), source, tmp_path / "board.png", render.Window(10_000, 3_600))
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(source.queries) == sum(len(p["targets"]) for p in load(path)["panels"])
    assert not [q for q in source.queries if "$" in q], "every variable substituted"
    if "programme" in json.dumps(load(path)["templating"]):
        assert any('"FAMILY_PACKAGE"' in q or '".*"' in q for q in source.queries)
