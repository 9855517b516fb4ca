"""Ground truth for the live metric: by prediction id, or by features plus truth.

Body: ``{"id": "<id of a prediction response>", "truth": [label per row]}``, or
``{"instances": [...] | "inputs": [...], "truth": [...]}`` (the server predicts again).
A single-row answer may give ``"truth": value`` instead of a one-element list.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from perennial_runtime.serve.validation import bad_request, unprocessable

# A regression truth further than this from zero is refused: its squared error stays below
# 1e200, so the server's error sums (and the operator's status patches, which JSON cannot
# carry +Inf in) stay finite for any number of feedback rows a server can count.
MAX_ABS_TRUTH = 1e100


@dataclass(frozen=True)
class Score:
    correct: int = 0
    incorrect: int = 0
    abs_error_sum: float = 0.0
    squared_error_sum: float = 0.0
    count: int = 0

    def as_json(self, classification: bool) -> dict[str, Any]:
        if classification:
            return {"rows": self.count, "correct": self.correct, "incorrect": self.incorrect}
        return {
            "rows": self.count,
            "abs_error_sum": self.abs_error_sum,
            "squared_error_sum": self.squared_error_sum,
        }


def truth_of(doc: dict[str, Any], classification: bool) -> list[Any]:
    if "truth" not in doc:
        raise bad_request('feedback needs "truth": the true label (or value) per row')
    truth = doc["truth"]
    values = truth if isinstance(truth, list) else [truth]
    if not classification:
        for i, value in enumerate(values):
            if type(value) not in (int, float) or not abs(value) <= MAX_ABS_TRUTH:
                raise unprocessable(
                    f'"truth"[{i}] of a regression model must be a finite number within '
                    f"+-{MAX_ABS_TRUTH:g}, got {str(value)[:40]}"
                )
    return values


def score(predicted: list[Any], truth: list[Any], classification: bool) -> Score:
    if len(predicted) != len(truth):
        raise unprocessable(
            f'"truth" has {len(truth)} values but the prediction has {len(predicted)} rows'
        )
    if classification:
        # Compare as text: a JSON client may send the class 1 as "1" or 1.
        correct = sum(str(p) == str(t) for p, t in zip(predicted, truth, strict=True))
        return Score(correct=correct, incorrect=len(truth) - correct, count=len(truth))
    errors = [float(p) - float(t) for p, t in zip(predicted, truth, strict=True)]
    result = Score(
        abs_error_sum=sum(abs(e) for e in errors),
        squared_error_sum=sum(e * e for e in errors),
        count=len(errors),
    )
    if not (math.isfinite(result.abs_error_sum) and math.isfinite(result.squared_error_sum)):
        raise unprocessable("the errors of this feedback are not finite; nothing was counted")
    return result
