"""Reading what a runtime container leaves in its termination message: one compact JSON
object (a training result, a dataset fingerprint, or a failure report)."""

from __future__ import annotations

import json
from typing import Any

MAX_REPORT = 1500  # characters of a failure report kept in a condition message


def parse_message(message: str) -> dict[str, Any] | None:
    """The runtime writes one JSON object; anything else is not ours (or was truncated)."""
    try:
        data = json.loads(message)
    except (ValueError, TypeError):
        return None
    return data if isinstance(data, dict) else None


def failure_report(message: str) -> str:
    """A human sentence from a failure message: outcome, message, then each failing check."""
    data = parse_message(message)
    if data is None:
        return message.strip()[:MAX_REPORT] or "no termination message"
    failures = [f for f in data.get("failures") or [] if isinstance(f, dict)]
    # With a list of failures the runtime's own message repeats them: keep the list only.
    head = f"{len(failures)} failing check(s)" if failures else None
    parts = [head or str(data.get("message") or data.get("outcome") or "failed")]
    for failure in failures:
        column = failure.get("column")
        where = f" on column {column}" if column not in (None, "") else ""
        parts.append(
            f"{failure.get('check')}{where}: observed {failure.get('observed')}, "
            f"expected {failure.get('expected')}"
        )
    if data.get("truncated"):
        parts.append("(more failures truncated)")
    return "; ".join(parts)[:MAX_REPORT]
