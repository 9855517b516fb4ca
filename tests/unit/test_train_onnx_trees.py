"""Tree ensembles in a float64 graph (onnx_trees.py): the bin rewrite keeps every split exact.

The data below puts feature values closer together than float32 can tell apart (as the
diabetes dataset does), so a float32 graph must get some rows wrong; the float64 graph with
binned trees must get all of them right.
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from perennial_runtime.train.features import Columns
from perennial_runtime.train.onnx_export import convert, feeds
from perennial_runtime.train.onnx_trees import bin_index, bins_of, thresholds_by_feature
from perennial_runtime.train.pipelines import build_pipeline

pytestmark = pytest.mark.unit

finite = st.floats(allow_nan=False, allow_infinity=False, width=64)


@given(st.lists(finite, min_size=1, max_size=20, unique=True), st.lists(finite, max_size=30))
def test_bin_comparisons_are_the_threshold_comparisons(thresholds, xs) -> None:
    table = thresholds_by_feature(1, np.zeros(len(thresholds), dtype=int), np.array(thresholds))
    bins = bins_of(np.array(xs, dtype=float).reshape(-1, 1), table)[:, 0] if xs else []
    for t in thresholds:
        k = bin_index(table[0], t)
        for x, b in zip(xs, bins, strict=True):
            assert (x <= t) == (b <= k)


def test_an_unknown_threshold_is_refused() -> None:
    with pytest.raises(ValueError, match="not among"):
        bin_index(np.array([0.1, 0.2]), 0.15)
    assert bin_index(np.array([0.1, 0.2]), np.inf) == 2.0  # HGB's split on NaN: every bin


def _close_values() -> tuple[pd.DataFrame, pd.Series]:
    """Labels decided by differences in the 15th significant digit."""
    rng = np.random.default_rng(0)
    base = 0.06345271983825301
    steps = rng.integers(0, 40, 400)
    x = base + steps * 2e-17 * 4  # neighbours one or two float64 ulps apart
    noise = rng.normal(size=400)
    y = pd.Series((steps >= 20).astype(int))
    return pd.DataFrame({"x": x, "noise": noise}), y


@pytest.mark.parametrize("family", ["hist_gradient_boosting", "lightgbm"])
def test_splits_finer_than_float32_survive_in_the_double_graph(family) -> None:
    X, y = _close_values()
    assert len(np.unique(X["x"].astype(np.float32))) < len(np.unique(X["x"]))
    columns = Columns(numeric=("x", "noise"))
    leaf = "min_samples_leaf" if family == "hist_gradient_boosting" else "min_child_samples"
    params = {leaf: 5}
    model = build_pipeline("classification", family, params, columns).fit(X, y)
    expected = model.predict(X)
    assert (expected == y).mean() > 0.95  # the split between close values was learnt
    for precision, exact in (("double", True), ("float", False)):
        graph = convert(model, columns, precision)
        session = ort.InferenceSession(
            graph.SerializeToString(), providers=["CPUExecutionProvider"]
        )
        labels, probabilities = session.run(None, feeds(graph, columns, X))
        assert np.array_equal(labels, expected) is exact, precision
        if exact:
            np.testing.assert_allclose(probabilities, model.predict_proba(X), rtol=0, atol=1e-5)
