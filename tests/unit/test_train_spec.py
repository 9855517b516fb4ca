"""TrainingJob spec parsing: defaults, ignored operator fields, and errors naming the field."""

from __future__ import annotations

from typing import Any

import pytest

from perennial_runtime.train.algorithms import ALGORITHMS
from perennial_runtime.train.errors import BadSpec
from perennial_runtime.train.spec import parse_manifest, parse_spec

pytestmark = pytest.mark.unit

BASE: dict[str, Any] = {
    "model": "m",
    "task": "classification",
    "dataset": {"uri": "file:///d.csv", "target": "y"},
}


def test_defaults_and_operator_fields_are_ignored() -> None:
    job = parse_spec(
        BASE
        | {
            "resources": {"cpu": "1"},
            "computePool": "p",
            "image": "x",
            "command": ["a"],
            "artifacts": {},
            "backoffLimit": 3,
        }
    )
    assert job.algorithm == "auto" and job.hyperparameters == {}
    automl = job.automl
    assert (automl.time_budget_seconds, automl.metric, automl.cv_folds, automl.ensemble_size) == (
        120,
        None,
        3,
        25,
    )
    assert automl.serving_latency_budget_ms == 1.0
    assert (job.dataset.test_fraction, job.dataset.seed, job.dataset.format) == (0.2, 42, "auto")
    assert job.validation.min_rows == 1 and job.validation.max_missing_fraction == 1.0
    assert job.metric(2) == "roc_auc" and job.metric(3) == "accuracy"


def test_manifest_may_be_yaml_or_json() -> None:
    yaml_text = (
        "kind: TrainingJob\nspec:\n  model: m\n  task: regression\n"
        "  dataset: {uri: 'builtin://diabetes'}\n"
    )
    assert parse_manifest(yaml_text).task == "regression"
    json_text = (
        '{"kind": "TrainingJob", "spec": {"model": "m", "task": "clustering", '
        '"dataset": {"uri": "builtin://iris"}}}'
    )
    assert parse_manifest(json_text).metric(0) == "silhouette"


@pytest.mark.parametrize(
    ("change", "phrase"),
    [
        pytest.param({"task": "forecasting"}, "spec.task 'forecasting' is not one of", id="task"),
        pytest.param({"model": ""}, "spec.model is required", id="model"),
        pytest.param(
            {"algorithm": "catboost"}, "choose one of: auto, logistic_regression", id="algorithm"
        ),
        pytest.param(
            {"algorithm": "random_forest", "hyperparameters": {"trees": 5}},
            "unknown hyperparameter(s) trees for algorithm random_forest; valid ones",
            id="hyperparameter",
        ),
        pytest.param(
            {
                "task": "recommendation",
                "algorithm": "matrix_factorization",
                "hyperparameters": {"n_factors": 0},
            },
            "invalid hyperparameter for algorithm matrix_factorization",
            id="factorisation-value",
        ),
        pytest.param(
            {"hyperparameters": {"C": 1}},
            "needs a named spec.algorithm",
            id="hyperparameters-with-auto",
        ),
        pytest.param(
            {"automl": {"metric": "r2"}}, "does not apply to task classification", id="metric"
        ),
        pytest.param(
            {"automl": {"timeBudgetSeconds": "soon"}}, "must be an integer", id="budget-type"
        ),
        pytest.param({"automl": {"cvFolds": 1}}, "cvFolds must be >= 2", id="folds"),
        pytest.param({"automl": {"ensembleSize": 101}}, "ensembleSize must be in", id="ensemble"),
        pytest.param(
            {"automl": {"servingLatencyBudgetMs": -1}},
            "servingLatencyBudgetMs must be in",
            id="serving-budget",
        ),
        pytest.param(
            {"automl": {"servingLatencyBudgetMs": "fast"}}, "must be a number", id="serving-type"
        ),
        pytest.param(
            {"dataset": {"uri": "file:///d.csv"}}, "spec.dataset.target is required", id="target"
        ),
        pytest.param(
            {"dataset": {"uri": "file:///d", "target": "y", "testFraction": 1.5}},
            "testFraction must be between 0 and 1",
            id="test-fraction",
        ),
        pytest.param(
            {"dataset": {"uri": "file:///d", "target": "y", "format": "xlsx"}},
            "format must be auto, csv or parquet",
            id="format",
        ),
        pytest.param({"validation": {"maxMissingFraction": 2}}, "must be in [0, 1]", id="missing"),
        pytest.param(
            {"validation": {"schema": {"a": {"type": "date"}}}},
            "schema.a.type must be one of",
            id="schema-type",
        ),
    ],
)
def test_bad_spec_names_the_field(change: dict[str, Any], phrase: str) -> None:
    with pytest.raises(BadSpec) as caught:
        parse_spec(BASE | change)
    assert phrase in caught.value.message


def test_wrong_kind_is_refused() -> None:
    with pytest.raises(BadSpec, match="expected kind TrainingJob"):
        parse_manifest("kind: InferenceService\nspec: {}\n")


def test_every_task_lists_algorithms_the_operator_can_enumerate() -> None:
    assert set(ALGORITHMS) == {
        "classification",
        "regression",
        "text-classification",
        "recommendation",
        "image-classification",
        "clustering",
        "anomaly-detection",
    }
    assert all(names and len(set(names)) == len(names) for names in ALGORITHMS.values())
