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


# What a training result may carry into a ModelVersion. The train container may be a user's
# image or command (issue 20, finding 5), so its message is checked like any user input.
REGISTRABLE_FORMATS = ("skops", "onnx")  # joblib needs allowUnsafePickle, never set for it
MAX_TEXT = 2048
MAX_ENTRIES = 256


def _number_map(value: Any) -> bool:
    """An object of at most MAX_ENTRIES entries (non-numeric or non-finite values are
    dropped later, as the status schema wants numbers)."""
    return isinstance(value, dict) and len(value) <= MAX_ENTRIES


def _short_text(value: Any) -> bool:
    return isinstance(value, str) and len(value) <= MAX_TEXT


def result_problem(result: dict[str, Any]) -> str | None:
    """What makes a success result unfit to register, or None. Checked: the artifact's
    format, the metrics (objects; the caller keeps only their finite numbers, as an
    Infinity would make every status patch fail), the dataset fields, the algorithm and
    hyperparameters (types and sizes)."""
    artifact = result.get("artifact")
    if not isinstance(artifact, dict):
        return "artifact is not an object"
    fmt = artifact.get("format", "skops")
    if fmt not in REGISTRABLE_FORMATS:
        return f"artifact format {str(fmt)[:64]!r} is not one of {', '.join(REGISTRABLE_FORMATS)}"
    for field in ("metrics", "baselineMetrics"):
        if field in result and not _number_map(result[field]):
            return f"{field} must be an object of at most {MAX_ENTRIES} entries"
    dataset = result.get("dataset", {})
    if not isinstance(dataset, dict):
        return "dataset is not an object"
    if not all(_short_text(dataset.get(k, "")) for k in ("uri", "sha256")):
        return f"dataset uri and sha256 must be strings of at most {MAX_TEXT} characters"
    rows = dataset.get("rows", 0)
    if not isinstance(rows, int) or isinstance(rows, bool) or rows < 0:
        return "dataset rows must be a non-negative integer"
    if "algorithm" in result and not (
        isinstance(result["algorithm"], str) and len(result["algorithm"]) <= 253
    ):
        return "algorithm must be a string of at most 253 characters"
    hyper = result.get("hyperparameters", {})
    if not isinstance(hyper, dict) or len(json.dumps(hyper, default=str)) > 16384:
        return "hyperparameters must be an object of at most 16 KiB"
    return None
