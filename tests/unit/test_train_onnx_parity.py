"""ONNX agrees with scikit-learn: every family, both ensemble kinds, every shipped dataset,
and data with missing values and categorical columns.

Each model is fitted on the trainer's own split and exported by perennial-train's exporter,
which must write it (float64 inputs); then onnxruntime is run here, independently, on every
row (training and held-out): labels must be equal, probabilities within 1e-5, regression
within 1e-5 relative (to max(1, |y|), as onnx_export.py measures it).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pandas as pd
import pytest
from sklearn.exceptions import ConvergenceWarning
from threadpoolctl import threadpool_limits

from perennial_runtime.train import run
from perennial_runtime.train.algorithms import ALGORITHMS
from perennial_runtime.train.features import Columns, prepare, split
from perennial_runtime.train.onnx_export import export, feeds
from perennial_runtime.train.pipelines import build_ensemble, build_pipeline
from perennial_runtime.train.progress import Progress
from perennial_runtime.train.spec import parse_spec
from support.training import anomaly_frame

pytestmark = [
    pytest.mark.unit,
    pytest.mark.filterwarnings(f"ignore::{ConvergenceWarning.__module__}.ConvergenceWarning"),
]

# Small settings: the same converters, a fraction of the fitting time.
QUICK = {
    "random_forest": {"n_estimators": 25},
    "gradient_boosting": {"n_estimators": 25},
    "hist_gradient_boosting": {"max_iter": 25},
    "lightgbm": {"n_estimators": 25},
    "isolation_forest": {"n_estimators": 25},
    "mlp": {"max_iter": 50},
}
DATASETS = {
    "classification": ["iris", "wine", "breast_cancer"],
    "image-classification": ["digits"],
    "regression": ["diabetes", "linnerud"],
    "clustering": ["iris", "wine"],
}
SINGLE = [
    (task, dataset, family)
    for task, datasets in DATASETS.items()
    for dataset in datasets
    for family in ALGORITHMS[task]
]
VOTES = [(task, dataset) for task in ("classification", "image-classification", "regression")
         for dataset in DATASETS[task]]  # fmt: skip


def _builtin(task: str, dataset: str) -> tuple[pd.DataFrame, pd.DataFrame, Any, Any, Columns]:
    job = parse_spec({"model": "m", "task": task, "dataset": {"uri": f"builtin://{dataset}"}})
    checked = run.load_and_check(job, Path("/"), Progress(stream=io.StringIO()))
    data = split(job, checked.frame, checked.columns)
    return data.X_train, data.X_test, data.y_train, data.y_test, checked.columns


def _mixed(task: str) -> tuple[pd.DataFrame, pd.DataFrame, Any, Any, Columns]:
    """Numeric columns with missing values, categorical ones with missing and rare values."""
    rng = np.random.default_rng(11)
    n = 400
    frame = pd.DataFrame(
        {
            "age": rng.integers(18, 80, n).astype(float),
            "income": rng.lognormal(3.5, 0.4, n),
            "visits": rng.poisson(3, n).astype(float),
            "plan": rng.choice(["basic", "plus", "pro", None], n, p=[0.4, 0.3, 0.2, 0.1]),
            "region": rng.choice(["north", "south", "east", "west", "islands"], n),
        }
    )
    for column, share in (("income", 0.15), ("visits", 0.1), ("age", 0.05)):
        frame.loc[rng.random(n) < share, column] = np.nan
    signal = (
        frame["income"].fillna(30) / 30 + (frame["plan"] == "pro") - frame["age"].fillna(50) / 60
    )
    if task == "regression":
        y = pd.Series(10 * signal + rng.normal(0, 0.5, n))
    else:
        y = pd.Series(np.select([signal > 1.2, signal > 0.6], ["high", "mid"], "low"))
    columns = Columns(numeric=("age", "income", "visits"), categorical=("plan", "region"))
    X = prepare(frame, columns)
    return X.iloc[:300], X.iloc[300:], y.iloc[:300], y.iloc[300:], columns


def _assert_parity(task: str, families: set[str], model: Any, parts: tuple) -> None:
    X_train, X_test, _, _, columns = parts
    exported = export(task, families, model, columns, X_test)
    assert exported.report["written"], exported.report
    assert exported.report["precision"] == "double"
    graph = exported.model
    session = ort.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"])
    X = pd.concat([X_train, X_test])
    outputs = session.run(None, feeds(graph, columns, X))
    first = np.ravel(outputs[0])
    if task == "regression":
        expected = model.predict(X)
        relative = np.abs(first - expected) / np.maximum(1.0, np.abs(expected))
        assert relative.max() <= 1e-5, relative.max()
        return
    np.testing.assert_array_equal(first, model.predict(X))
    if hasattr(model, "predict_proba") and task != "anomaly-detection":
        np.testing.assert_allclose(outputs[1], model.predict_proba(X), rtol=0, atol=1e-5)


def _fit(model: Any, parts: tuple) -> Any:
    X_train, _, y_train, _, _ = parts
    with threadpool_limits(1):
        return model.fit(X_train, y_train)


@pytest.mark.parametrize(("task", "dataset", "family"), SINGLE, ids=["-".join(c) for c in SINGLE])
def test_every_family_on_every_shipped_dataset(task: str, dataset: str, family: str) -> None:
    parts = _builtin(task, dataset)
    model = _fit(build_pipeline(task, family, QUICK.get(family, {}), parts[4]), parts)
    _assert_parity(task, {family}, model, parts)


def _vote(task: str) -> list[tuple[str, dict[str, Any], int]]:
    """Every family once (the family vote)."""
    return [(name, QUICK.get(name, {}), 1) for name in ALGORITHMS[task]]


def _selection(task: str) -> list[tuple[str, dict[str, Any], int]]:
    """Unequal weights, as ensemble selection picks them (a family twice, differently)."""
    members = [(name, QUICK.get(name, {}), 1 + i % 3) for i, name in enumerate(ALGORITHMS[task])]
    first = ALGORITHMS[task][0]
    return [*members, (first, OTHER_CONFIG[first], 2)]


OTHER_CONFIG = {"logistic_regression": {"C": 0.3}, "ridge": {"alpha": 3.0}}


@pytest.mark.parametrize("kind", ["family-vote", "selection"])
@pytest.mark.parametrize(("task", "dataset"), VOTES, ids=["-".join(v) for v in VOTES])
def test_both_ensemble_kinds_on_every_shipped_dataset(task: str, dataset: str, kind: str) -> None:
    parts = _builtin(task, dataset)
    members = _vote(task) if kind == "family-vote" else _selection(task)
    model = _fit(build_ensemble(task, members, parts[4]), parts)
    _assert_parity(task, {m[0] for m in members}, model, parts)


MIXED = [(task, family) for task in ("classification", "regression") for family in ALGORITHMS[task]]


@pytest.mark.parametrize(("task", "family"), MIXED, ids=["-".join(m) for m in MIXED])
def test_every_family_with_missing_values_and_categories(task: str, family: str) -> None:
    parts = _mixed(task)
    model = _fit(build_pipeline(task, family, QUICK.get(family, {}), parts[4]), parts)
    _assert_parity(task, {family}, model, parts)


@pytest.mark.parametrize("kind", ["family-vote", "selection"])
@pytest.mark.parametrize("task", ["classification", "regression"])
def test_both_ensemble_kinds_with_missing_values_and_categories(task: str, kind: str) -> None:
    parts = _mixed(task)
    members = _vote(task) if kind == "family-vote" else _selection(task)
    model = _fit(build_ensemble(task, members, parts[4]), parts)
    _assert_parity(task, {m[0] for m in members}, model, parts)


def test_isolation_forest() -> None:
    frame = anomaly_frame()
    columns = Columns(numeric=("a", "b"))
    X = prepare(frame, columns)
    parts = (X.iloc[:200], X.iloc[200:], None, None, columns)
    model = _fit(build_pipeline("anomaly-detection", "isolation_forest", {}, columns), parts)
    _assert_parity("anomaly-detection", {"isolation_forest"}, model, parts)
