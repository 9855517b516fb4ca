"""ModelVersion status, pure: Ready, or Failed (Stalled) with what the schema cannot see."""

from __future__ import annotations

from typing import Any

from perennial_operator.api import conditions as c
from perennial_operator.api.rejections import LEGACY_FIELD
from perennial_operator.decide.kstatus import Health, with_health
from perennial_operator.decide.modelversion.metrics import primary_metric
from perennial_operator.decide.modelversion.registry import modelversion_problem


def modelversion_status(mv: dict[str, Any], now: str) -> dict[str, Any]:
    previous = dict(mv.get("status") or {})
    generation = int(mv["metadata"].get("generation", 1))
    problem = modelversion_problem(mv)
    if problem:  # only a change of the manifest can fix the reference
        health = Health.stuck(c.INVALID_REFERENCE, problem)
        phase = "Failed"
    else:
        health = Health(
            True, c.ARTIFACT_RECORDED, f"artifact {mv['spec']['artifact']['uri']} recorded"
        )
        phase = "Ready"
    task = str((mv["spec"].get("source") or {}).get("task", "classification"))
    previous.pop(LEGACY_FIELD, None)  # moved to annotations (reconcile/modelversion.py)
    return {
        **previous,
        "stageHistory": stage_history(mv, now),
        "phase": phase,
        "observedGeneration": generation,
        "conditions": with_health(
            previous.get("conditions") or [], health, generation=generation, now=now
        ),
        "primaryMetric": primary_metric(task, dict(mv["spec"].get("metrics") or {})),
    }


MAX_HISTORY = 20  # status.stageHistory maxItems


def _stage_written(mv: dict[str, Any]) -> tuple[str, str] | None:
    """(time, field manager) of the newest managedFields entry that owns spec.stage."""
    owners = [
        (str(entry.get("time") or ""), str(entry.get("manager") or ""))
        for entry in mv["metadata"].get("managedFields") or []
        if "f:stage" in ((entry.get("fieldsV1") or {}).get("f:spec") or {})
    ]
    return max(owners, default=None)


def stage_history(mv: dict[str, Any], now: str) -> list[dict[str, str]]:
    """status.stageHistory with spec.stage appended when it differs from the last entry;
    level-triggered, so a stage change made while the operator was away is still recorded
    (with the time the API server stamped on the write)."""
    history = list((mv.get("status") or {}).get("stageHistory") or [])
    stage = str(mv["spec"].get("stage") or "None")
    if history and history[-1].get("stage") == stage:
        return history
    written = _stage_written(mv)
    entry = {"stage": stage, "time": written[0] if written and written[0] else now}
    if written and written[1]:
        entry["by"] = written[1][:128]
    return [*history, entry][-MAX_HISTORY:]


def recorded_stage(mv: dict[str, Any]) -> str | None:
    """The stage the status last recorded (stageHistory's last entry): what spec.stage
    changed from, when the two differ. The status is written only after a change is
    handled, so a change is never taken as handled before it was. None before the first
    sync (a new version); the current stage for a status written before stageHistory was
    (no change to handle: one would have been handled when it was made)."""
    status = mv.get("status") or {}
    history = status.get("stageHistory") or []
    if history:
        return str(history[-1].get("stage"))
    return str(mv["spec"].get("stage") or "None") if status.get("phase") else None
