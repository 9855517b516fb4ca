"""Charts as server-rendered SVG: no JavaScript, no external assets, readable in any browser.

Each function is pure (data in, markup out), escapes every text it draws, and gives the
chart a <title> for screen readers; pages put the same numbers in a table beside it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from markupsafe import Markup

from perennial_studio.views.lineage import COLUMNS, Graph

STATE_COLOURS = {"ok": "#2e7d32", "warn": "#b26a00", "bad": "#c62828", "idle": "#5f6b7a"}


def _num(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _ticks(low: float, high: float, count: int = 4) -> list[float]:
    if high <= low:
        return [low]
    step = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(step))
    step = min((m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= step), default=step)
    first = math.floor(low / step) * step
    ticks, value = [], first
    while value <= high + step * 1e-9:
        if value >= low - step * 1e-9:
            ticks.append(round(value, 12))
        value += step
    return ticks


def _label(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.4g}"


@dataclass(frozen=True)
class Series:
    name: str
    points: Sequence[tuple[float, float | None]]  # (x, y); None breaks the line
    colour: str = "#1565c0"


def line_chart(
    series: Sequence[Series],
    *,
    title: str,
    y_label: str = "",
    x_labels: dict[float, str] | None = None,
    markers: dict[float, str] | None = None,  # x -> note (e.g. "Production")
    width: int = 640,
    height: int = 220,
    y_min: float | None = None,
) -> Markup:
    left, right, top, bottom = 56, 16, 16, 34
    xs = [x for s in series for x, _ in s.points]  # the whole span, gaps included
    ys = [y for s in series for _, y in s.points if y is not None]
    out = [
        f'<svg class="chart" role="img" viewBox="0 0 {width} {height}" width="100%" '
        f'preserveAspectRatio="xMinYMin meet" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
    ]
    if not ys:
        out.append(
            f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle" '
            f'class="muted">no data yet</text></svg>'
        )
        return Markup("".join(out))
    x0, x1 = min(xs), max(xs)
    lo = min(ys) if y_min is None else min(y_min, min(ys))
    hi = max(ys)
    if hi == lo:  # one value: a band around it, never below y_min
        spread = abs(hi) * 0.05 or 1.0
        lo, hi = (lo if y_min is not None and lo <= y_min else lo - spread), hi + spread
    pad = (hi - lo) * 0.08
    lo, hi = (lo if y_min is not None and lo == y_min else lo - pad), hi + pad

    def px(x: float) -> float:
        return (
            left + (x - x0) / (x1 - x0) * (width - left - right)
            if x1 > x0
            else (left + (width - left - right) / 2)
        )

    def py(y: float) -> float:
        return top + (hi - y) / (hi - lo) * (height - top - bottom)

    for tick in _ticks(lo, hi):
        y = py(tick)
        out.append(
            f'<line class="grid" x1="{left}" x2="{width - right}" y1="{_num(y)}" '
            f'y2="{_num(y)}"/><text class="axis" x="{left - 6}" y="{_num(y + 4)}" '
            f'text-anchor="end">{escape(_label(tick))}</text>'
        )
    labels = x_labels or {}
    shown = sorted(labels) if len(labels) <= 12 else sorted(labels)[:: math.ceil(len(labels) / 12)]
    for x in shown:
        out.append(
            f'<text class="axis" x="{_num(px(x))}" y="{height - bottom + 16}" '
            f'text-anchor="middle">{escape(labels[x])}</text>'
        )
    if y_label:
        out.append(f'<text class="axis" x="{left}" y="{top - 4}">{escape(y_label)}</text>')
    for x, note in (markers or {}).items():
        out.append(
            f'<line class="marker" x1="{_num(px(x))}" x2="{_num(px(x))}" y1="{top}" '
            f'y2="{height - bottom}"><title>{escape(note)}</title></line>'
        )
    for s in series:
        segments: list[list[str]] = [[]]
        for x, value in s.points:
            if value is None:
                segments.append([])
                continue
            segments[-1].append(f"{_num(px(x))},{_num(py(value))}")
        for seg in segments:
            if len(seg) > 1:
                out.append(
                    f'<polyline fill="none" stroke="{s.colour}" stroke-width="2" '
                    f'points="{" ".join(seg)}"/>'
                )
        for x, value in s.points:
            if value is not None and len(s.points) <= 200:
                label = labels.get(x, _label(x))
                out.append(
                    f'<circle cx="{_num(px(x))}" cy="{_num(py(value))}" r="3" fill="{s.colour}">'
                    f"<title>{escape(s.name)} {escape(label)}: {escape(_label(value))}"
                    "</title></circle>"
                )
    out.append("</svg>")
    return Markup("".join(out))


def bar_chart(
    bars: Sequence[tuple[str, float]],
    *,
    title: str,
    threshold: float | None = None,
    width: int = 640,
    bar: int = 18,
) -> Markup:
    """Horizontal bars, one per label (feature names can be long), a dashed threshold."""
    left, right, top = 200, 60, 8
    height = top * 2 + bar * max(1, len(bars)) + 16
    out = [
        f'<svg class="chart" role="img" viewBox="0 0 {width} {height}" width="100%" '
        f'preserveAspectRatio="xMinYMin meet" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
    ]
    high = max([v for _, v in bars] + [threshold or 0.0, 1e-9])
    scale = (width - left - right) / high
    for i, (label, value) in enumerate(bars):
        y = top + i * bar
        over = threshold is not None and value > threshold
        short = label if len(label) <= 28 else label[:27] + "…"
        out.append(
            f'<text class="axis" x="{left - 6}" y="{y + bar * 0.7:.1f}" text-anchor="end">'
            f"{escape(short)}<title>{escape(label)}</title></text>"
            f'<rect class="{"bar over" if over else "bar"}" x="{left}" y="{y + 2}" '
            f'width="{max(1.0, value * scale):.1f}" height="{bar - 4}">'
            f"<title>{escape(label)}: PSI {value:.4f}</title></rect>"
            f'<text class="axis" x="{left + max(1.0, value * scale) + 4:.1f}" '
            f'y="{y + bar * 0.7:.1f}">{value:.3f}</text>'
        )
    if threshold is not None:
        x = left + threshold * scale
        out.append(
            f'<line class="threshold" x1="{x:.1f}" x2="{x:.1f}" y1="{top}" '
            f'y2="{height - 16}"/><text class="axis" x="{x:.1f}" y="{height - 4}" '
            f'text-anchor="middle">threshold {threshold:g}</text>'
        )
    out.append("</svg>")
    return Markup("".join(out))


def lineage_graph(graph: Graph, *, width: int = 960) -> Markup:
    """Four columns (dataset, job, version, service), boxes linking to their pages, edges
    as curves. Each box is an <a> so the graph is navigable by keyboard too."""
    row_h, box_w, box_h, top = 58, 200, 44, 30
    height = top + max(1, graph.rows) * row_h + 10
    col_x = [10 + i * (width - 20 - box_w) / (len(COLUMNS) - 1) for i in range(len(COLUMNS))]
    out = [
        f'<svg class="lineage" role="img" viewBox="0 0 {width} {height}" width="100%" '
        f'preserveAspectRatio="xMinYMin meet" xmlns="http://www.w3.org/2000/svg">',
        "<title>Lineage: dataset, TrainingJob, ModelVersion, InferenceService</title>",
    ]
    for i, column in enumerate(COLUMNS):
        out.append(f'<text class="axis" x="{col_x[i]:.0f}" y="16">{escape(column)}</text>')
    where = {n.id: (col_x[n.column], top + n.row * row_h) for n in graph.nodes}
    for a, b in graph.edges:
        if a in where and b in where:
            (ax, ay), (bx, by) = where[a], where[b]
            x1, y1, x2, y2 = ax + box_w, ay + box_h / 2, bx, by + box_h / 2
            mid = (x1 + x2) / 2
            out.append(
                f'<path class="edge" d="M{x1:.0f},{y1:.0f} C{mid:.0f},{y1:.0f} '
                f'{mid:.0f},{y2:.0f} {x2:.0f},{y2:.0f}" data-from="{escape(a)}" '
                f'data-to="{escape(b)}"/>'
            )
    for node in graph.nodes:
        x, y = where[node.id]
        label = node.label if len(node.label) <= 30 else "…" + node.label[-29:]
        sub = node.sub if len(node.sub) <= 34 else node.sub[:33] + "…"
        state = node.state if node.state in STATE_COLOURS else "idle"
        box = (
            f'<g class="node state-{state}" data-id="{escape(node.id)}"><rect x="{x:.0f}" '
            f'y="{y:.0f}" width="{box_w}" height="{box_h}" rx="6"/>'
            f'<text class="label" x="{x + 8:.0f}" y="{y + 18:.0f}">{escape(label)}</text>'
            f'<text class="sub" x="{x + 8:.0f}" y="{y + 35:.0f}">{escape(sub)}</text>'
            f"<title>{escape(node.label)} — {escape(node.sub)}</title></g>"
        )
        if node.url:
            box = f'<a href="{escape(node.url)}">{box}</a>'
        out.append(box)
    out.append("</svg>")
    return Markup("".join(out))
