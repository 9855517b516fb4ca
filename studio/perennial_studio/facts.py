"""Pure accessors over the objects the Store keeps: the vocabulary every view shares."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Any

from perennial_operator.api import rejections
from perennial_operator.api.group import GROUP

Obj = dict[str, Any]
LABEL_RETRAINPOLICY = f"{GROUP}/retrainpolicy"  # set by the operator on a policy's TrainingJobs
LABEL_TRAININGJOB = f"{GROUP}/trainingjob"
LABEL_INFERENCESERVICE = f"{GROUP}/inferenceservice"
LABEL_TRACK = f"{GROUP}/track"
LABEL_MODEL_VERSION = f"{GROUP}/model-version"
LABEL_COMPUTEPOOL = f"{GROUP}/compute-pool"
ANNOTATION_RETRAIN_REASON = f"{GROUP}/retrain-reason"
ANNOTATION_IDLE_SINCE = f"{GROUP}/idle-since"
STAGES = ("None", "Staging", "Production", "Archived")
# Metrics where lower is better (as the promotion gate reads them).
LOWER_IS_BETTER = frozenset({"rmse", "mse", "mae", "mape", "log_loss", "brier_score"})


def name(obj: Mapping[str, Any]) -> str:
    return str(obj["metadata"]["name"])


def namespace(obj: Mapping[str, Any]) -> str:
    return str(obj["metadata"].get("namespace") or "")


def spec(obj: Mapping[str, Any]) -> dict[str, Any]:
    return dict(obj.get("spec") or {})


def status(obj: Mapping[str, Any]) -> dict[str, Any]:
    return dict(obj.get("status") or {})


def created(obj: Mapping[str, Any]) -> str:
    return str(obj["metadata"].get("creationTimestamp") or "")


def condition(obj: Mapping[str, Any], type_: str) -> dict[str, Any]:
    for cond in status(obj).get("conditions") or []:
        if cond.get("type") == type_:
            return dict(cond)
    return {}


def parse_time(value: Any) -> dt.datetime | None:
    if not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def seconds_between(start: Any, end: Any) -> float | None:
    a, b = parse_time(start), parse_time(end)
    return None if a is None or b is None else (b - a).total_seconds()


# --- ModelVersions ------------------------------------------------------------------------


def stage(mv: Mapping[str, Any]) -> str:
    return str(spec(mv).get("stage") or "None")


def version(mv: Mapping[str, Any]) -> int:
    try:
        return int(spec(mv).get("version") or 0)
    except (TypeError, ValueError):
        return 0


def model_of(kind: str, obj: Mapping[str, Any]) -> str | None:
    """The model a resource is about (None for kinds that have none)."""
    s = spec(obj)
    if kind in ("ModelVersion", "TrainingJob"):
        return str(s.get("model") or "") or None
    if kind == "InferenceService":
        return str((s.get("model") or {}).get("name") or "") or None
    if kind == "RetrainPolicy":
        return str((s.get("template") or {}).get("model") or "") or None
    return None


def metric_pair(text: Any) -> tuple[str, float] | None:
    """`roc_auc=0.991` (status.primaryMetric) as a pair."""
    match = re.fullmatch(r"\s*([A-Za-z0-9_@.\-]+)=([-+0-9.eE]+|nan|inf)\s*", str(text or ""))
    if not match:
        return None
    try:
        return match.group(1), float(match.group(2))
    except ValueError:
        return None


def primary_metric(obj: Mapping[str, Any]) -> tuple[str, float] | None:
    """A ModelVersion's or TrainingJob's headline metric, as the operator chose it."""
    return metric_pair(status(obj).get("primaryMetric"))


def metrics_of(mv: Mapping[str, Any]) -> dict[str, float]:
    return {
        k: float(v)
        for k, v in (spec(mv).get("metrics") or {}).items()
        if isinstance(v, int | float) and not isinstance(v, bool)
    }


def rejected_by(mv: Mapping[str, Any], service: str) -> bool:
    """The service rolled `mv` back and no one retried it (annotations, or the status list
    of objects written before them)."""
    return rejections.rejected_by(mv, service)


def better(metric: str, a: float, b: float) -> bool:
    """Is a better than b for this metric?"""
    return a < b if metric in LOWER_IS_BETTER else a > b


# --- InferenceServices --------------------------------------------------------------------


def tracked_stage(isvc: Mapping[str, Any]) -> str | None:
    model = spec(isvc).get("model") or {}
    return None if model.get("version") is not None else str(model.get("stage") or "") or None


def pinned_version(isvc: Mapping[str, Any]) -> int | None:
    value = (spec(isvc).get("model") or {}).get("version")
    return None if value is None else int(value)


def health(isvc: Mapping[str, Any]) -> str:
    """ok | warn | bad | idle: the colour of a service's phase."""
    phase = status(isvc).get("phase") or "Pending"
    return {"Ready": "ok", "Progressing": "warn", "Degraded": "bad", "RolledBack": "bad"}.get(
        str(phase), "idle"
    )


# --- Pods -----------------------------------------------------------------------------------


def restarts(pod: Mapping[str, Any]) -> int:
    return sum(int(c.get("restartCount") or 0) for c in status(pod).get("containerStatuses") or [])


def short_sha(value: Any, length: int = 12) -> str:
    text = str(value or "")
    return text[:length]
