"""Render a Grafana dashboard's panels to one PNG from a real Prometheus, for the docs (Grafana does
not run everywhere; its image renderer needs a browser).

    .venv/bin/python deploy/grafana/render.py --prometheus http://127.0.0.1:9090 \\
        --out docs/monitoring deploy/grafana/dashboards/*.json [--var programme=FAMILY_PACKAGE]

Each panel's queries are run as Grafana would run them (template variables, ``$__range``,
``$__rate_interval``; stat, bar gauge and table panels at the end of the range, time series over
it) and drawn in the panel's place on the dashboard's grid. Supported panel types: stat, bargauge,
timeseries, table and barchart (the last two with a ``groupingToMatrix`` transformation).
"""

import argparse
import json
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.axes import Axes

PANEL_TYPES = {"stat", "bargauge", "timeseries", "table", "barchart"}
# Known values drawn in their natural order (the funnel, run states, line statuses); others sorted.
ORDER = [
    *("registered", "poor", "eligible", "enrolled", "instructed", "paid", "failed", "unclaimed"),
    *("DRAFT", "CALCULATED", "APPROVED", "INSTRUCTED", "RECONCILED", "CANCELLED"),
    *("PAID", "FAILED", "UNCLAIMED"),
]
ROW_HEIGHT_INCHES = 0.42
LEGEND_ENTRIES = 8


class Source(Protocol):
    """What rendering needs from Prometheus (``Prometheus`` below, or a fake in tests)."""

    def instant(self, query: str, at: float) -> list[dict[str, Any]]: ...
    def range(self, query: str, start: float, end: float, step: float) -> list[dict[str, Any]]: ...
    def label_values(self, selector: str, label: str) -> list[str]: ...


class Prometheus:
    def __init__(self, url: str) -> None:
        import httpx  # here: the rest of the module is usable (and tested) without a server

        self.http = httpx.Client(base_url=url.rstrip("/"), timeout=30)

    def _get(self, path: str, **params: Any) -> Any:
        response = self.http.get(path, params=params)
        body = response.json()
        if body.get("status") != "success":
            raise RuntimeError(f"{path} {params}: {body.get('error', response.text)}")
        return body["data"]

    def instant(self, query: str, at: float) -> list[dict[str, Any]]:
        data = self._get("/api/v1/query", query=query, time=at)
        return data["result"] if data["resultType"] in ("vector", "matrix") else []

    def range(self, query: str, start: float, end: float, step: float) -> list[dict[str, Any]]:
        return self._get("/api/v1/query_range", query=query, start=start, end=end, step=step)["result"]

    def label_values(self, selector: str, label: str) -> list[str]:
        return sorted(self._get(f"/api/v1/label/{label}/values", **{"match[]": selector}))


# --- queries -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    end: float
    seconds: float
    rate_interval: str = "1m"

    @property
    def start(self) -> float:
        return self.end - self.seconds

    @property
    def step(self) -> float:
        return max(1.0, self.seconds / 240)


def substitute(expr: str, variables: dict[str, str], window: Window) -> str:
    """``expr`` with Grafana's variables replaced (``$name``, ``${name}``, ``$__range``...)."""
    values = {
        **variables,
        "__range": f"{int(window.seconds)}s",
        "__rate_interval": window.rate_interval,
        "__interval": f"{int(window.step)}s",
    }
    for name in sorted(values, key=len, reverse=True):
        expr = expr.replace("${" + name + "}", values[name]).replace("$" + name, values[name])
    return expr


def resolve_variables(dashboard: dict[str, Any], source: Source, chosen: dict[str, str]) -> dict[str, str]:
    """A value for each template variable: ``chosen``, else All (multi) or the first value."""
    variables: dict[str, str] = {}
    for variable in dashboard.get("templating", {}).get("list", []):
        name = variable["name"]
        if name in chosen:
            variables[name] = chosen[name]
            continue
        query = variable.get("query")
        query = query.get("query", "") if isinstance(query, dict) else str(query or "")
        match = re.fullmatch(r"\s*label_values\((.*),\s*(\w+)\s*\)\s*", query)
        options = (
            source.label_values(substitute(match.group(1), variables, Window(0, 0)), match.group(2))
            if match
            else []
        )
        if variable.get("includeAll"):
            variables[name] = variable.get("allValue") or "|".join(map(re.escape, options)) or ".*"
        else:
            variables[name] = options[0] if options else ""
    return variables


def legend(template: str | None, labels: dict[str, str]) -> str:
    if not template or template == "__auto":
        shown = {k: v for k, v in labels.items() if k != "__name__"}
        return ", ".join(f"{k}={v}" for k, v in sorted(shown.items())) or labels.get("__name__", "value")
    return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: labels.get(m.group(1), ""), template)


def order_key(value: str) -> tuple[int, str]:
    return (ORDER.index(value), "") if value in ORDER else (len(ORDER), value)


@dataclass
class PanelData:
    points: list[tuple[str, float]] = field(default_factory=list)  # stat, bargauge
    series: list[tuple[str, list[float], list[float]]] = field(default_factory=list)  # timeseries
    rows: list[str] = field(default_factory=list)  # table, barchart
    columns: list[str] = field(default_factory=list)
    cells: dict[tuple[str, str], float] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not (self.points or self.series or self.cells)


def query_panel(
    panel: dict[str, Any], source: Source, variables: dict[str, str], window: Window
) -> PanelData:
    data = PanelData()
    for target in panel.get("targets", []):
        expr = substitute(target["expr"], variables, window)
        if panel["type"] == "timeseries":
            for result in source.range(expr, window.start, window.end, window.step):
                times = [float(t) for t, _ in result["values"]]
                values = [float(v) for _, v in result["values"]]
                data.series.append((legend(target.get("legendFormat"), result["metric"]), times, values))
        elif panel["type"] in ("table", "barchart"):
            options = next(t["options"] for t in panel["transformations"] if t["id"] == "groupingToMatrix")
            for result in source.instant(expr, window.end):
                row, column = (
                    result["metric"].get(options["rowField"], ""),
                    result["metric"].get(options["columnField"], ""),
                )
                data.cells[row, column] = float(result["value"][1])
            data.rows = sorted({r for r, _ in data.cells}, key=order_key)
            data.columns = sorted({c for _, c in data.cells}, key=order_key)
        else:
            results = source.instant(expr, window.end)
            points = [
                (legend(target.get("legendFormat"), r["metric"]), float(r["value"][1])) for r in results
            ]
            data.points += sorted(points, key=lambda p: order_key(p[0]))
    return data


# --- drawing -------------------------------------------------------------------------------------------


def formatter(unit: str | None) -> Callable[[float], str]:
    def fmt(value: float) -> str:
        if math.isnan(value):
            return "NaN"
        if unit == "percentunit":
            return f"{value * 100:.1f}%"
        if unit == "s":
            return (
                f"{value * 1000:.0f} ms"
                if abs(value) < 1
                else f"{value:.1f} s"
                if value < 120
                else f"{value / 60:.1f} min"
            )
        if unit in ("ops", "reqps"):
            return f"{value:.3g}/s"
        return f"{value:,.0f}" if float(value).is_integer() or abs(value) >= 100 else f"{value:,.3g}"

    return fmt


def draw_stat(ax: Axes, data: PanelData, fmt: Callable[[float], str], panel: dict[str, Any]) -> None:
    ax.axis("off")
    text_mode = panel.get("options", {}).get("textMode", "value_and_name")
    n = len(data.points)
    for i, (name, value) in enumerate(data.points):
        x = (i + 0.5) / n
        if text_mode == "name":
            ax.text(x, 0.5, name, ha="center", va="center", fontsize=20, weight="bold")
            continue
        ax.text(x, 0.55, fmt(value), ha="center", va="center", fontsize=20 if n < 4 else 14, weight="bold")
        if text_mode != "value":
            ax.text(x, 0.2, name, ha="center", va="center", fontsize=9, color="dimgray")


def draw_bargauge(ax: Axes, data: PanelData, fmt: Callable[[float], str], unit: str | None) -> None:
    names = [name for name, _ in data.points][::-1]
    values = [value for _, value in data.points][::-1]
    bars = ax.barh(names, values, color="#5470c6")
    top = 1.0 if unit == "percentunit" else max([*values, 0]) or 1
    ax.set_xlim(0, top * 1.15)  # room for the value beside the longest bar
    ax.bar_label(bars, labels=[fmt(v) for v in values], padding=3, fontsize=8)
    ax.tick_params(labelsize=8)
    ax.xaxis.set_major_formatter(lambda v, _: fmt(v))


def draw_timeseries(ax: Axes, data: PanelData, fmt: Callable[[float], str], window: Window) -> None:
    # The legend names the series highest at the end first, at most LEGEND_ENTRIES of them.
    ranked = sorted(data.series, key=lambda s: -s[2][-1] if s[2] and not math.isnan(s[2][-1]) else 0)
    for i, (name, times, values) in enumerate(ranked):
        label = name if i < LEGEND_ENTRIES else None
        ax.plot([(t - window.end) / 60 for t in times], values, label=label, linewidth=1.2)
    ax.set_xlim(-window.seconds / 60, 0)
    ax.set_xlabel("minutes before the rendering", fontsize=8)
    ax.yaxis.set_major_formatter(lambda v, _: fmt(v))
    ax.tick_params(labelsize=8)
    ax.grid(alpha=0.3)
    if data.series:
        title = f"{len(ranked) - LEGEND_ENTRIES} more not named" if len(ranked) > LEGEND_ENTRIES else None
        ax.legend(fontsize=7, loc="upper left", frameon=False, title=title, title_fontsize=7)


def draw_table(ax: Axes, data: PanelData, fmt: Callable[[float], str]) -> None:
    ax.axis("off")
    cells = [[fmt(data.cells[r, c]) if (r, c) in data.cells else "" for c in data.columns] for r in data.rows]
    table = ax.table(
        cellText=cells, rowLabels=data.rows, colLabels=data.columns, loc="center", cellLoc="right"
    )
    table.auto_set_font_size(False)
    table.set_fontsize(8)


def draw_barchart(ax: Axes, data: PanelData, fmt: Callable[[float], str]) -> None:
    width = 0.8 / max(1, len(data.columns))
    for i, column in enumerate(data.columns):
        xs = [j + i * width for j in range(len(data.rows))]
        ax.bar(xs, [data.cells.get((r, column), 0) for r in data.rows], width, label=column)
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(data.rows))], data.rows, fontsize=8)
    ax.yaxis.set_major_formatter(lambda v, _: fmt(v))
    ax.tick_params(labelsize=8)
    ax.legend(fontsize=7, frameon=False)
    ax.grid(axis="y", alpha=0.3)


def draw_panel(ax: Axes, panel: dict[str, Any], data: PanelData, window: Window) -> None:
    unit = panel.get("fieldConfig", {}).get("defaults", {}).get("unit")
    fmt = formatter(unit)
    ax.set_title(panel["title"], fontsize=10, loc="left", weight="bold")
    if data.empty:
        ax.axis("off")
        no_value = panel.get("fieldConfig", {}).get("defaults", {}).get("noValue", "No data")
        ax.text(0.5, 0.45, no_value, ha="center", va="center", fontsize=14, color="gray")
    elif panel["type"] == "stat":
        draw_stat(ax, data, fmt, panel)
    elif panel["type"] == "bargauge":
        draw_bargauge(ax, data, fmt, unit)
    elif panel["type"] == "timeseries":
        draw_timeseries(ax, data, fmt, window)
    elif panel["type"] == "table":
        draw_table(ax, data, fmt)
    else:
        draw_barchart(ax, data, fmt)


def render(
    dashboard: dict[str, Any], source: Source, out: Path, window: Window, chosen: dict[str, str] | None = None
) -> Path:
    """Draw every panel of ``dashboard`` from ``source`` into the PNG ``out``."""
    variables = resolve_variables(dashboard, source, chosen or {})
    panels = [p for p in dashboard["panels"] if p["type"] in PANEL_TYPES]
    rows = max(p["gridPos"]["y"] + p["gridPos"]["h"] for p in panels)
    height = rows * ROW_HEIGHT_INCHES + 1.2
    figure = plt.figure(figsize=(22, height))
    grid = figure.add_gridspec(
        rows, 24, hspace=1.6, wspace=1.2, left=0.05, right=0.99, bottom=0.6 / height, top=1 - 1.0 / height
    )
    for panel in panels:
        x, y, w, h = (panel["gridPos"][k] for k in "xywh")
        ax = figure.add_subplot(grid[y + 1 : y + h, x : x + w])  # the panel's first row holds its title
        draw_panel(ax, panel, query_panel(panel, source, variables, window), window)
    shown = ", ".join(f"{k}={v}" for k, v in variables.items()) or "no variables"
    at = datetime.fromtimestamp(window.end, UTC).strftime("%Y-%m-%d %H:%M UTC")
    figure.suptitle(
        f"{dashboard['title']}  —  Prometheus data at {at}, last {window.seconds / 60:.0f} min; {shown}",
        x=0.01,
        ha="left",
        fontsize=13,
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=80)
    plt.close(figure)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("dashboards", nargs="+", type=Path)
    parser.add_argument("--prometheus", default="http://127.0.0.1:9090")
    parser.add_argument("--out", type=Path, default=Path("docs/monitoring"))
    parser.add_argument("--minutes", type=float, default=60, help="time range of the time series")
    parser.add_argument("--rate-interval", default="1m", help="what $__rate_interval stands for")
    parser.add_argument("--var", action="append", default=[], help="name=value of a template variable")
    args = parser.parse_args()
    chosen = dict(v.split("=", 1) for v in args.var)
    source = Prometheus(args.prometheus)
    window = Window(time.time(), args.minutes * 60, args.rate_interval)
    for path in args.dashboards:
        out = render(json.loads(path.read_text()), source, args.out / f"{path.stem}.png", window, chosen)
        print(out)


if __name__ == "__main__":
    main()
