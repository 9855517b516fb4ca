"""Safe loading: every algorithm's model loads with the trusted list; anything else is refused."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import skops.io as sio
from sklearn.datasets import load_iris
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import FunctionTransformer

from perennial_runtime.train import persist
from perennial_runtime.train.algorithms import ALGORITHMS, CLASSIFICATION_TASKS
from perennial_runtime.train.features import Columns, prepare
from perennial_runtime.train.pipelines import build_pipeline
from support.training import anomaly_frame, ratings_frame, text_frame

pytestmark = pytest.mark.unit

# Small settings so every family fits in well under a second.
QUICK = {
    "random_forest": {"n_estimators": 5},
    "hist_gradient_boosting": {"max_iter": 5},
    "lightgbm": {"n_estimators": 5},
    "gradient_boosting": {"n_estimators": 5},
    "isolation_forest": {"n_estimators": 5},
    "mlp": {"max_iter": 5},
    "matrix_factorization": {"n_iter": 2},
}
CASES = [(task, name) for task, names in ALGORITHMS.items() for name in names]


def _data(task: str) -> tuple[pd.DataFrame, Columns, object]:
    if task == "text-classification":
        frame = text_frame(40)
        columns = Columns(text="text")
        return prepare(frame, columns), columns, frame["label"]
    if task == "recommendation":
        frame = ratings_frame(10, 10, 5)
        columns = Columns(categorical=("user", "item"))
        return prepare(frame, columns), columns, frame["rating"]
    if task == "anomaly-detection":
        frame = anomaly_frame(60)
        columns = Columns(numeric=("a", "b"))
        return prepare(frame, columns), columns, None
    iris = load_iris(as_frame=True)
    columns = Columns(numeric=tuple(iris.data.columns))
    y = iris.target.astype(float) if task == "regression" else iris.target
    return prepare(iris.data, columns), columns, (y if task != "clustering" else None)


@pytest.mark.filterwarnings(f"ignore::{ConvergenceWarning.__module__}.ConvergenceWarning")
@pytest.mark.parametrize(("task", "name"), CASES, ids=[f"{t}-{n}" for t, n in CASES])
def test_every_algorithm_loads_with_the_trusted_list(tmp_path: Path, task: str, name: str) -> None:
    X, columns, y = _data(task)
    model = build_pipeline(task, name, QUICK.get(name, {}), columns).fit(X, y)
    persist.save_model(model, tmp_path / "model.skops")
    loaded = persist.load_model(tmp_path / "model.skops")
    assert (loaded.predict(X) == model.predict(X)).all()
    if task in CLASSIFICATION_TASKS:
        assert (loaded.predict_proba(X) == model.predict_proba(X)).all()


def test_a_type_outside_the_trusted_list_is_refused(tmp_path: Path) -> None:
    sio.dump(FunctionTransformer(func=print), tmp_path / "evil.skops")
    with pytest.raises(persist.UntrustedModelError, match="builtins.print"):
        persist.load_model(tmp_path / "evil.skops")
