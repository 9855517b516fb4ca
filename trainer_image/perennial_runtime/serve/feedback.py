"""Ground truth for the live metric: by prediction id, or by features plus truth.

Body: ``{"id": "<id of a prediction response>", "truth": [label per row]}``, or
``{"instances": [...] | "inputs": [...], "truth": [...]}`` (the server predicts again).
A single-row answer may give ``"truth": value`` instead of a one-element list.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from perennial_runtime.serve.validation import bad_request, unprocessable


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


def truth_of(doc: dict[str, Any]) -> list[Any]:
    if "truth" not in doc:
        raise bad_request('feedback needs "truth": the true label (or value) per row')
    truth = doc["truth"]
    return truth if isinstance(truth, list) else [truth]


def score(predicted: list[Any], truth: list[Any], classification: bool) -> Score:
    if len(predicted) != len(truth):
        raise unprocessable(
            f'"truth" has {len(truth)} values but the prediction has {len(predicted)} rows'
        )
    if classification:
        # Compare as text: a JSON client may send the class 1 as "1" or 1.
        correct = sum(str(p) == str(t) for p, t in zip(predicted, truth, strict=True))
        return Score(correct=correct, incorrect=len(truth) - correct, count=len(truth))
    if not all(type(t) in (int, float) for t in truth):
        raise unprocessable('"truth" of a regression model must be numbers')
    errors = [float(p) - float(t) for p, t in zip(predicted, truth, strict=True)]
    return Score(
        abs_error_sum=sum(abs(e) for e in errors),
        squared_error_sum=sum(e * e for e in errors),
        count=len(errors),
    )
