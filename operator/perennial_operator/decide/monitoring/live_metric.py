"""The live quality metric from ground-truth feedback the server counted.

Classifiers get accuracy from perennial_feedback_total{outcome=correct|incorrect};
regressors get the mean absolute error from perennial_feedback_abs_error_sum and
perennial_feedback_count. Sums run across every replica of the version.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from perennial_operator.decide.monitoring.samples import Sample, total

OUTCOMES = "perennial_feedback_total"
ABS_ERROR_SUM = "perennial_feedback_abs_error_sum"
COUNT = "perennial_feedback_count"


def live_metric(samples: Iterable[Sample]) -> dict[str, Any] | None:
    """status.liveMetric, or None before any feedback arrived."""
    samples = list(samples)
    correct = total(samples, OUTCOMES, outcome="correct")
    incorrect = total(samples, OUTCOMES, outcome="incorrect")
    if correct + incorrect > 0:
        labelled = correct + incorrect
        return {"name": "accuracy", "value": round(correct / labelled, 6), "samples": int(labelled)}
    count = total(samples, COUNT)
    if count > 0:
        mae = total(samples, ABS_ERROR_SUM) / count
        return {"name": "mae", "value": round(mae, 6), "samples": int(count)}
    return None
