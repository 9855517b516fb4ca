"""The promotion gate, pure: does a trained candidate beat the serving baseline?

Both numbers come from the same TrainingJob, which evaluates the baseline on the candidate's
own test split, so the comparison is like for like.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from perennial_operator.api import conditions as c
from perennial_operator.decide.modelversion.metrics import PRIMARY_METRICS

# Error metrics: smaller is better, so the improvement is baseline - candidate.
LOWER_IS_BETTER = frozenset({"rmse", "mse", "mae", "mape", "log_loss", "brier_score"})
# Float subtraction: 0.991 - 0.98 must count as an improvement of 0.011.
EPSILON = 1e-9


@dataclass(frozen=True)
class Verdict:
    promote: bool
    reason: str
    message: str
    metric: str
    candidate: float | None = None
    baseline: float | None = None


def improvement(metric: str, candidate: float, baseline: float) -> float:
    """How much better the candidate is; negative when it is worse."""
    delta = candidate - baseline
    return -delta if metric in LOWER_IS_BETTER else delta


def gate_metric(promotion: Mapping[str, Any], template: Mapping[str, Any]) -> str:
    """promotion.metric, else the AutoML metric, else the task's primary metric."""
    named = promotion.get("metric") or (template.get("automl") or {}).get("metric")
    if named:
        return str(named)
    task = str(template.get("task", "classification"))
    return PRIMARY_METRICS.get(task, ("accuracy",))[0]


def _number(metrics: Mapping[str, Any], name: str) -> float | None:
    value = metrics.get(name)
    return float(value) if isinstance(value, int | float) else None


def gate(
    metric: str,
    candidate_metrics: Mapping[str, Any],
    baseline_metrics: Mapping[str, Any],
    min_improvement: float,
) -> Verdict:
    """Promote when improvement(metric) >= min_improvement; a missing number never promotes."""
    candidate = _number(candidate_metrics, metric)
    baseline = _number(baseline_metrics, metric)
    if candidate is None:
        return Verdict(
            False,
            c.CANDIDATE_METRIC_MISSING,
            f"the candidate has no {metric} metric to compare",
            metric,
        )
    if baseline is None:
        return Verdict(
            False,
            c.BASELINE_METRIC_MISSING,
            f"the baseline has no {metric} on the test split (candidate={candidate:.6g})",
            metric,
            candidate,
        )
    gain = improvement(metric, candidate, baseline)
    direction = "lower" if metric in LOWER_IS_BETTER else "higher"
    numbers = (
        f"{metric} candidate={candidate:.6g} baseline={baseline:.6g} "
        f"improvement={gain:+.6g} ({direction} is better), "
        f"minImprovement={min_improvement:.6g}"
    )
    if gain + EPSILON >= min_improvement:
        return Verdict(True, c.CANDIDATE_PROMOTED, numbers, metric, candidate, baseline)
    return Verdict(False, c.BELOW_MIN_IMPROVEMENT, numbers, metric, candidate, baseline)
