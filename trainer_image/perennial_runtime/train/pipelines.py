"""Each algorithm as a scikit-learn pipeline with the preprocessing its data needs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import VotingClassifier, VotingRegressor
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from perennial_runtime.train.algorithms import CLASSIFICATION_TASKS, build_estimator
from perennial_runtime.train.features import Columns

# Trees split on raw values: scaling changes nothing for them but would make their ONNX
# form disagree with scikit-learn (which compares float32 values with the thresholds).
TREES = frozenset(
    {
        "random_forest",
        "gradient_boosting",
        "hist_gradient_boosting",
        "lightgbm",
        "xgboost",
        "isolation_forest",
    }
)


def build_pipeline(task: str, name: str, params: dict[str, Any], columns: Columns) -> Any:
    """Preprocessing + estimator; recommendation is the bare factorisation model."""
    estimator = build_estimator(task, name, params)
    if task == "recommendation":
        return estimator
    scale = name not in TREES
    return Pipeline([("preprocess", _preprocessor(columns, scale)), ("model", estimator)])


def build_ensemble(
    task: str, members: Sequence[tuple[str, dict[str, Any], int]], columns: Columns
) -> Any:
    """A weighted average of member pipelines: (algorithm, params, weight) each.

    Classification averages probabilities (soft vote). ``flatten_transform=False`` and
    float weights are what skl2onnx needs to convert it.
    """
    estimators = [
        (f"m{i}_{name}", build_pipeline(task, name, params, columns))
        for i, (name, params, _) in enumerate(members)
    ]
    weights = np.asarray([float(weight) for _, _, weight in members])
    if task in CLASSIFICATION_TASKS:
        return VotingClassifier(estimators, voting="soft", weights=weights, flatten_transform=False)
    return VotingRegressor(estimators, weights=weights)


def members_of(model: Any) -> list[Any]:
    """The member pipelines of an ensemble built here, or the model itself."""
    if isinstance(model, VotingClassifier | VotingRegressor):
        return list(model.estimators_)
    return [model]


def _preprocessor(columns: Columns, scale: bool) -> ColumnTransformer:
    parts: list[tuple[str, Any, Any]] = []
    if columns.text:
        # A scalar column name hands the vectoriser the 1-D text it expects.
        parts.append(("text", TfidfVectorizer(), columns.text))
    if columns.numeric:
        steps: list[tuple[str, Any]] = [("impute", SimpleImputer(strategy="median"))]
        if scale:
            steps.append(("scale", StandardScaler()))
        numeric = Pipeline(steps)
        parts.append(("numeric", numeric, list(columns.numeric)))
    if columns.categorical:
        onehot = OneHotEncoder(handle_unknown="ignore", sparse_output=False)
        parts.append(("categorical", onehot, list(columns.categorical)))
    return ColumnTransformer(parts, remainder="drop")
