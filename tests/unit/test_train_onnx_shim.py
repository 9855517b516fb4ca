"""The skl2onnx/protobuf shim (onnx_shim.py): still needed, and still working.

The first test fails on the day skl2onnx converts HistGradientBoosting* by itself under the
installed protobuf: then delete onnx_shim.py and its install() call in onnx_converters.py.
"""

from __future__ import annotations

import numpy as np
import pytest
from skl2onnx import to_onnx
from skl2onnx.operator_converters import random_forest
from sklearn.datasets import load_wine
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

from perennial_runtime.train import onnx_converters, onnx_shim

pytestmark = pytest.mark.unit
OPSET = {"": 17, "ai.onnx.ml": 3}


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    X, y = load_wine(return_X_y=True)
    return X.astype(np.float32), y


def _convert(model, X):
    return to_onnx(model, X[:1], options={id(model): {"zipmap": False}}, target_opset=OPSET)


def test_stock_skl2onnx_still_needs_the_shim(data, monkeypatch) -> None:
    X, y = data
    model = HistGradientBoostingClassifier(max_iter=3, random_state=0).fit(X, y)
    onnx_converters.register()
    monkeypatch.setattr(
        random_forest, "add_tree_to_attribute_pairs_hist_gradient_boosting", onnx_shim.ORIGINAL
    )
    try:
        _convert(model, X)
    except ValueError as exc:
        assert "Expected an int, got a boolean" in str(exc.__cause__), exc.__cause__
    else:
        pytest.fail(
            "stock skl2onnx converts HistGradientBoosting now: delete onnx_shim.py, its "
            "install() call in onnx_converters.py and this test"
        )


@pytest.mark.parametrize("cls", [HistGradientBoostingClassifier, HistGradientBoostingRegressor])
def test_the_shim_writes_the_attribute_as_integers(data, cls) -> None:
    X, y = data
    target = y.astype(float) if cls is HistGradientBoostingRegressor else y
    model = cls(max_iter=3, random_state=0).fit(X, target)
    onnx_converters.register()
    installed = random_forest.add_tree_to_attribute_pairs_hist_gradient_boosting
    assert installed is not onnx_shim.ORIGINAL
    options = {id(model): {"zipmap": False}} if hasattr(model, "predict_proba") else None
    converted = to_onnx(model, X[:1], options=options, target_opset=OPSET)
    (tree,) = [n for n in converted.graph.node if n.op_type.startswith("TreeEnsemble")]
    (tracks,) = [a for a in tree.attribute if a.name == onnx_shim.ATTRIBUTE]
    leaves = sum(p.nodes["is_leaf"].sum() for ps in model._predictors for p in ps)
    assert len(tracks.ints) == sum(len(p.nodes) for ps in model._predictors for p in ps)
    assert list(tracks.ints).count(0) >= leaves  # every leaf says 0, as the bool False meant
