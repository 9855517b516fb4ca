"""The drift reference saved with the model (profile.json), which the server counts against.

Binning rule, shared with the server: a numeric value ``x`` falls in bin
``bisect.bisect_left(edges, x)`` (numpy: ``searchsorted(edges, x, side="left")``), so bins
are right-closed intervals (-inf, e0], (e0, e1], ..., (e_last, inf); ``edges`` are the
strictly increasing interior cut points taken from training quantiles, and there are
``len(edges) + 1`` proportions. Missing values are not binned; they count in ``missing``.
A categorical value outside ``categories`` (unseen or too rare to list) counts in the last
proportion ("other"). Proportions are over non-missing values.
"""

from __future__ import annotations

import bisect
from typing import Any

import numpy as np
import pandas as pd

from perennial_runtime.train.features import MISSING_CATEGORY, Columns

PROFILE_VERSION = 1
DEFAULT_BINS = 10
MAX_CATEGORIES = 50


def bin_index(edges: list[float], value: float) -> int:
    """The bin of ``value`` under the rule in the module docstring."""
    return bisect.bisect_left(edges, value)


def numeric_profile(name: str, values: pd.Series, bins: int = DEFAULT_BINS) -> dict[str, Any]:
    data = values.to_numpy(dtype=np.float64)
    present = data[~np.isnan(data)]
    edges: list[float] = []
    if len(present):
        quantiles = np.quantile(present, np.linspace(0, 1, bins + 1)[1:-1])
        edges = [float(e) for e in np.unique(quantiles)]
    counts = np.bincount(np.searchsorted(edges, present, side="left"), minlength=len(edges) + 1)
    return {
        "name": name,
        "kind": "numeric",
        "edges": edges,
        "proportions": _proportions(counts),
        "missing": _fraction(len(data) - len(present), len(data)),
    }


def categorical_profile(name: str, values: pd.Series) -> dict[str, Any]:
    strings = values.astype(object)
    missing = strings.isna() | (strings == MISSING_CATEGORY)
    present = strings[~missing].astype(str)
    counts = present.value_counts()
    categories = [str(c) for c in counts.index[:MAX_CATEGORIES]]
    listed = [int(counts[c]) for c in categories]
    return {
        "name": name,
        "kind": "categorical",
        "categories": categories,
        "proportions": _proportions(np.array([*listed, len(present) - sum(listed)])),
        "missing": _fraction(int(missing.sum()), len(strings)),
    }


def build_profile(X: pd.DataFrame, columns: Columns, predictions: Any, task: str) -> dict[str, Any]:
    """Training-data reference: every numeric and categorical feature, and the predictions.

    Free text is not profiled (no fixed bins fit it); its drift shows in the predictions.
    """
    features = [numeric_profile(n, X[n]) for n in columns.numeric]
    features += [categorical_profile(n, X[n]) for n in columns.categorical]
    return {
        "version": PROFILE_VERSION,
        "rows": len(X),
        "features": features,
        "prediction": _prediction_profile(predictions, task),
    }


def _prediction_profile(predictions: Any, task: str) -> dict[str, Any]:
    values = pd.Series(np.asarray(predictions))
    if task in ("regression", "recommendation"):
        profile = numeric_profile("prediction", values)
        profile.pop("name")
        return profile
    counts = values.value_counts().sort_index()
    return {
        "kind": "classes",
        "classes": [_plain(c) for c in counts.index],
        "proportions": _proportions(counts.to_numpy()),
    }


def _proportions(counts: Any) -> list[float]:
    total = float(np.sum(counts))
    return [round(float(c) / total, 6) if total else 0.0 for c in counts]


def _fraction(part: int, whole: int) -> float:
    return round(part / whole, 6) if whole else 0.0


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value
