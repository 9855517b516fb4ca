"""Each algorithm as a scikit-learn pipeline with the preprocessing its data needs."""

from __future__ import annotations

from typing import Any

from sklearn.compose import ColumnTransformer
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from perennial_runtime.train.algorithms import build_estimator
from perennial_runtime.train.features import Columns

# Trees split on raw values: scaling changes nothing for them but would make their ONNX
# form disagree with scikit-learn (which compares float32 values with the thresholds).
TREES = frozenset(
    {"random_forest", "gradient_boosting", "hist_gradient_boosting", "isolation_forest"}
)


def build_pipeline(task: str, name: str, params: dict[str, Any], columns: Columns) -> Any:
    """Preprocessing + estimator; recommendation is the bare factorisation model."""
    estimator = build_estimator(task, name, params)
    if task == "recommendation":
        return estimator
    scale = name not in TREES
    return Pipeline([("preprocess", _preprocessor(columns, scale)), ("model", estimator)])


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
