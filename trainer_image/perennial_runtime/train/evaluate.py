"""Held-out metrics per task, and the scorers AutoML optimises (higher is better)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from sklearn import metrics as skm

from perennial_runtime.train.algorithms import CLASSIFICATION_TASKS, LOWER_IS_BETTER
from perennial_runtime.train.recommend import precision_recall_at_k

Scorer = Callable[[Any, pd.DataFrame, Any], float]
TOP_K = 10


def evaluate(
    task: str,
    model: Any,
    X_test: pd.DataFrame,
    y_test: Any,
    X_train: pd.DataFrame | None = None,
    y_train: Any = None,
) -> dict[str, float]:
    """The task's standard metrics on the held-out split (rounded for reports)."""
    if task in CLASSIFICATION_TASKS:
        found = _classification(model, X_test, y_test)
    elif task == "regression":
        found = _regression(y_test, model.predict(X_test))
    elif task == "recommendation":
        found = _regression(y_test, model.predict(X_test))
        found.pop("r2")
        p, r = precision_recall_at_k(model, X_train, X_test, y_test, TOP_K)
        found |= {f"precision_at_{TOP_K}": p, f"recall_at_{TOP_K}": r}
    elif task == "clustering":
        found = _clustering(model, X_test, y_test)
    else:
        found = _anomaly(model, X_test, y_test)
    return {k: round(float(v), 6) for k, v in found.items() if math.isfinite(v)}


def _classification(model: Any, X: pd.DataFrame, y: Any) -> dict[str, float]:
    labels = model.predict(X)
    found = {
        "accuracy": skm.accuracy_score(y, labels),
        "f1_macro": skm.f1_score(y, labels, average="macro"),
    }
    if hasattr(model, "predict_proba"):
        proba = model.predict_proba(X)
        classes = list(model.classes_)
        found["log_loss"] = skm.log_loss(y, proba, labels=classes)
        present = set(np.unique(y))
        if len(classes) == 2 and len(present) == 2:
            found["roc_auc"] = skm.roc_auc_score(y, proba[:, 1])
        elif len(classes) > 2 and present == set(classes):
            found["roc_auc"] = skm.roc_auc_score(y, proba, multi_class="ovr", labels=classes)
    return found


def _regression(y: Any, predicted: Any) -> dict[str, float]:
    return {
        "r2": skm.r2_score(y, predicted),
        "rmse": skm.root_mean_squared_error(y, predicted),
        "mae": skm.mean_absolute_error(y, predicted),
    }


def _clustering(model: Any, X: pd.DataFrame, y: Any) -> dict[str, float]:
    labels = model.predict(X)
    found: dict[str, float] = {"clusters": float(len(np.unique(labels)))}
    if 2 <= len(np.unique(labels)) < len(X):
        found["silhouette"] = skm.silhouette_score(model[:-1].transform(X), labels)
    if y is not None:
        found["adjusted_rand"] = skm.adjusted_rand_score(y, labels)
    return found


def _anomaly(model: Any, X: pd.DataFrame, y: Any) -> dict[str, float]:
    flagged = model.predict(X) == -1
    found = {"fraction_flagged": float(np.mean(flagged))}
    if y is not None and len(np.unique(y)) == 2:
        # Lower score_samples means more abnormal; labels are 1 for anomalies.
        found["roc_auc"] = skm.roc_auc_score(y, -model.score_samples(X))
    return found


def scorer(task: str, metric: str, n_classes: int) -> Scorer:
    """A CV scorer for ``metric``; lower-is-better metrics are negated."""
    if metric == "silhouette":
        return _silhouette_scorer
    names = {
        "roc_auc": "roc_auc" if n_classes <= 2 else "roc_auc_ovr",
        "log_loss": "neg_log_loss",
        "rmse": "neg_root_mean_squared_error",
        "mae": "neg_mean_absolute_error",
    }
    built: Scorer = skm.get_scorer(names.get(metric, metric))
    return built


def _silhouette_scorer(model: Any, X: pd.DataFrame, y: Any = None) -> float:
    labels = model.predict(X)
    if not 2 <= len(np.unique(labels)) < len(X):
        return -1.0
    return float(skm.silhouette_score(model[:-1].transform(X), labels))


def natural(metric: str, score: float) -> float:
    """A CV score back in the metric's own orientation (rmse positive, lower is better)."""
    return -score if metric in LOWER_IS_BETTER else score
