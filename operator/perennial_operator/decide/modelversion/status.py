"""ModelVersion status, pure: Ready, or Failed with what the schema cannot see."""

from __future__ import annotations

from typing import Any

from perennial_operator.api import conditions as c
from perennial_operator.decide.conditions import set_condition
from perennial_operator.decide.modelversion.metrics import primary_metric
from perennial_operator.decide.modelversion.registry import modelversion_problem


def modelversion_status(mv: dict[str, Any], now: str) -> dict[str, Any]:
    previous = dict(mv.get("status") or {})
    generation = int(mv["metadata"].get("generation", 1))
    problem = modelversion_problem(mv)
    if problem:
        conds = set_condition(
            previous.get("conditions") or [],
            type_=c.READY,
            status=False,
            reason=c.INVALID_REFERENCE,
            message=problem,
            generation=generation,
            now=now,
        )
        phase = "Failed"
    else:
        conds = set_condition(
            previous.get("conditions") or [],
            type_=c.READY,
            status=True,
            reason=c.ARTIFACT_RECORDED,
            message=f"artifact {mv['spec']['artifact']['uri']} recorded",
            generation=generation,
            now=now,
        )
        phase = "Ready"
    task = str((mv["spec"].get("source") or {}).get("task", "classification"))
    return {
        **previous,
        "phase": phase,
        "observedGeneration": generation,
        "conditions": conds,
        "primaryMetric": primary_metric(task, dict(mv["spec"].get("metrics") or {})),
    }
