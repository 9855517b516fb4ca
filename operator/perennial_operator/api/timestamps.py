"""RFC 3339 timestamps as the API server writes them, and the one way we read them back.

Pure: nothing here reads a clock; the caller passes the time in.
"""

from __future__ import annotations

import datetime as dt
from typing import Any


def parse_time(value: Any) -> dt.datetime | None:
    """An RFC 3339 stamp ("2026-01-02T03:04:05Z", with or without fractions) as an aware
    UTC datetime; None for nothing, or for what is not a stamp (a hand-edited annotation)."""
    if not value:
        return None
    try:
        when = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return (when if when.tzinfo else when.replace(tzinfo=dt.UTC)).astimezone(dt.UTC)


def epoch(value: Any) -> float:
    """parse_time as epoch seconds, 0.0 for no stamp."""
    when = parse_time(value)
    return when.timestamp() if when else 0.0


def format_time(when: dt.datetime | float) -> str:
    """Whole seconds, as metav1.Time; a float is epoch seconds."""
    if isinstance(when, int | float):
        when = dt.datetime.fromtimestamp(when, dt.UTC)
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def format_precise(when: dt.datetime) -> str:
    """With microseconds, as metav1.MicroTime: for what is compared at sub-second scale."""
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
