"""Jinja2 environment and the filters templates share (times, numbers, durations)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup, escape

from perennial_studio import facts, svg, urls


def relative(seconds: float) -> str:
    """ "3 min ago" / "in 2 h": what a person reads at a glance."""
    ahead, s = seconds < 0, abs(seconds)
    if s < 45:
        text = f"{int(s)} s"
    elif s < 45 * 60:
        text = f"{round(s / 60)} min"
    elif s < 36 * 3600:
        text = f"{round(s / 3600)} h"
    else:
        text = f"{round(s / 86400)} d"
    return f"in {text}" if ahead else f"{text} ago"


def timetag(value: Any, now: dt.datetime | None = None) -> Markup:
    """<time> with the relative time as text and the absolute one on hover."""
    when = facts.parse_time(value)
    if when is None:
        return Markup('<span class="muted">—</span>')
    now = now or dt.datetime.now(dt.UTC)
    absolute = when.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return Markup(
        f'<time datetime="{escape(when.isoformat())}" title="{absolute}">'
        f"{escape(relative((now - when).total_seconds()))}</time>"
    )


def duration(seconds: Any) -> str:
    if not isinstance(seconds, int | float):
        return "—"
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{int(seconds // 60)} min {int(seconds % 60)} s"
    return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60)} min"


def number(value: Any, digits: int = 4) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "—" if value is None else str(value)
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:.{digits}g}"


def percent(value: Any) -> str:
    return "—" if not isinstance(value, int | float) else f"{value * 100:.2f} %"


def as_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("perennial_studio", "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters |= {
        "time": timetag,
        "duration": duration,
        "num": number,
        "pct": percent,
        "json": as_json,
        "short": facts.short_sha,
    }
    env.globals |= {"urls": urls, "svg": svg, "facts": facts}
    return env
