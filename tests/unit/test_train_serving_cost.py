"""serving_cost.py: how a candidate is timed, in the format it would be served."""

from __future__ import annotations

import pytest
from sklearn.datasets import load_breast_cancer

from perennial_runtime.train.features import Columns, prepare
from perennial_runtime.train.pipelines import build_pipeline
from perennial_runtime.train.serving_cost import measure, time_calls
from support.training import ratings_frame

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("family", ["logistic_regression", "hist_gradient_boosting"])
def test_a_convertible_model_is_timed_through_onnx(family: str) -> None:
    # (How the figures compare is for bench/training/model_latency.py, not a test.)
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    columns = Columns(numeric=tuple(X.columns))
    model = build_pipeline("classification", family, {}, columns).fit(X, y)
    cost = measure("classification", model, columns, X)
    assert cost.format == "onnx" and cost.ms_per_row > 0
    assert cost.report() == {"servingMs": round(cost.ms_per_row, 4), "servedAs": "onnx"}


def test_a_model_without_a_converter_is_timed_through_scikit_learn() -> None:
    frame = ratings_frame(10, 10, 5)
    columns = Columns(categorical=("user", "item"))
    model = build_pipeline("recommendation", "matrix_factorization", {"n_iter": 2}, columns)
    model.fit(prepare(frame, columns), frame["rating"])
    cost = measure("recommendation", model, columns, prepare(frame, columns))
    assert cost.format == "skops" and cost.ms_per_row > 0


def test_time_calls_warms_up_then_takes_the_median() -> None:
    calls = []
    assert time_calls(lambda: calls.append(1)) >= 0
    assert 3 + 3 <= len(calls) <= 3 + 30
