"""The skops path (sklearn_predictor.py): one numpy pass per batch, answers bit-identical to
the model's own predict / predict_proba, no DataFrame and no ColumnTransformer per batch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_diabetes, load_wine

from perennial_runtime.serve.signature import Feature, Signature
from perennial_runtime.serve.sklearn_predictor import SklearnPredictor
from perennial_runtime.train import persist
from perennial_runtime.train.features import Columns, prepare
from perennial_runtime.train.pipelines import build_ensemble, build_pipeline
from support.training import text_frame

pytestmark = pytest.mark.unit

VOTE = [
    ("logistic_regression", {}, 1),
    ("svm", {}, 1),
    ("lightgbm", {"n_estimators": 20}, 1),
    ("random_forest", {"n_estimators": 20}, 1),
    ("hist_gradient_boosting", {"max_iter": 20}, 1),
]


def _signature(columns: Columns, classes) -> Signature:
    features = tuple(Feature(n, "FP64") for n in columns.numeric)
    features += tuple(Feature(n, "BYTES") for n in columns.categorical)
    text = (Feature(columns.text, "BYTES"),) if columns.text else ()
    return Signature("t", features + text, classes, (), ())


def _blocks(X: pd.DataFrame, columns: Columns):
    numeric = X[list(columns.numeric)].to_numpy(np.float64)
    names = list(columns.categorical) + ([columns.text] if columns.text else [])
    categorical = X[names].to_numpy(object) if names else None
    return numeric, categorical


def _served(tmp_path: Path, model, columns: Columns, classes):
    """The model as the server gets it: written with skops and loaded back."""
    persist.save_model(model, tmp_path / "model.skops")
    return SklearnPredictor(
        persist.load_model(tmp_path / "model.skops"), _signature(columns, classes)
    )


def _mixed() -> tuple[pd.DataFrame, pd.Series, Columns]:
    rng = np.random.default_rng(3)
    n = 300
    frame = pd.DataFrame(
        {
            "age": rng.integers(18, 80, n).astype(float),
            "income": rng.normal(50, 15, n),
            "plan": rng.choice(["basic", "plus", "pro", None], n),
        }
    )
    frame.loc[rng.choice(n, 40, replace=False), "income"] = np.nan
    y = pd.Series(
        np.where((frame["income"].fillna(50) > 50) | (frame["plan"] == "pro"), "stay", "churn")
    )
    columns = Columns(numeric=("age", "income"), categorical=("plan",))
    return prepare(frame, columns), y, columns


def _assert_same(predictor, model, X, columns, classification=True) -> None:
    numeric, categorical = _blocks(X, columns)
    labels, probabilities = predictor.predict(numeric, categorical, classification)
    np.testing.assert_array_equal(labels, model.predict(X))
    if classification:
        np.testing.assert_array_equal(probabilities, model.predict_proba(X))
        plain, none = predictor.predict(numeric, categorical, False)
        np.testing.assert_array_equal(plain, model.predict(X))
        assert none is None


def test_a_family_vote_runs_each_preprocessing_once_and_answers_exactly(tmp_path, monkeypatch):
    X, y = load_wine(return_X_y=True, as_frame=True)
    columns = Columns(numeric=tuple(X.columns))
    model = build_ensemble("classification", VOTE, columns).fit(X, y)
    predictor = _served(tmp_path, model, columns, tuple(model.classes_))
    assert predictor.plan is not None
    assert len(predictor.plan.preps) == 2  # scaled (linear, SVM) and imputed only (trees)
    assert len(predictor.plan.members) == len(VOTE)

    def refuse(*args, **kwargs):
        raise AssertionError("per-batch pandas or ColumnTransformer work")

    expected = model.predict(X), model.predict_proba(X)
    monkeypatch.setattr(ColumnTransformer, "transform", refuse)
    monkeypatch.setattr(pd.DataFrame, "__init__", refuse)
    numeric, _ = _blocks(X, columns)
    labels, probabilities = predictor.predict(numeric, None, True)
    np.testing.assert_array_equal(labels, expected[0])
    np.testing.assert_array_equal(probabilities, expected[1])


def test_missing_values_and_categories_including_unseen_ones(tmp_path):
    X, y, columns = _mixed()
    members = [("logistic_regression", {}, 2), ("random_forest", {"n_estimators": 20}, 3)]
    model = build_ensemble("classification", members, columns).fit(X.iloc[:200], y.iloc[:200])
    predictor = _served(tmp_path, model, columns, tuple(model.classes_))
    assert predictor.plan is not None
    check = X.iloc[200:].copy()
    check.iloc[:5, check.columns.get_loc("plan")] = "enterprise"  # never seen in training
    _assert_same(predictor, model, check, columns)


def test_a_weighted_regression_average(tmp_path):
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    columns = Columns(numeric=tuple(X.columns))
    members = [("ridge", {}, 3), ("lightgbm", {"n_estimators": 30}, 1), ("svr", {}, 2)]
    model = build_ensemble("regression", members, columns).fit(X, y)
    predictor = _served(tmp_path, model, columns, None)
    assert predictor.plan is not None and predictor.plan.weights == [3.0, 1.0, 2.0]
    _assert_same(predictor, model, X, columns, classification=False)


@pytest.mark.parametrize("family", ["svm", "random_forest", "logistic_regression"])
def test_a_single_pipeline(tmp_path, family):
    X, y, columns = _mixed()
    model = build_pipeline("classification", family, {}, columns).fit(X, y)
    predictor = _served(tmp_path, model, columns, tuple(model.classes_))
    assert predictor.plan is not None
    _assert_same(predictor, model, X, columns)


def test_a_model_it_cannot_compile_is_served_through_its_own_methods(tmp_path):
    frame = text_frame(80)
    columns = Columns(text="text")
    X = prepare(frame, columns)
    model = build_pipeline("text-classification", "tfidf_logistic_regression", {}, columns)
    model.fit(X, frame["label"])
    predictor = _served(tmp_path, model, columns, tuple(model.classes_))
    assert predictor.plan is None
    _assert_same(predictor, model, X, columns)
