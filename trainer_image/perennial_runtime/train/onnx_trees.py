"""Tree ensembles inside a float64 graph: the splits scikit-learn, LightGBM, XGBoost make, exactly.

onnxruntime's TreeEnsemble kernels (and its SVMRegressor) compute in float32 only, so a
converter given float64 inputs builds a graph onnxruntime refuses, and feeding the whole
graph float32 changes decisions:

- Forests and gradient boosting compare float32(x) with their thresholds (scikit-learn casts
  X itself), so a Cast to float32 in front of the tree node is exact. XGBoost too: its
  DMatrix holds float32 values and its thresholds are float32.
- Histogram gradient boosting and LightGBM compare float64 x with float64 thresholds that
  sit between the training values. Real data puts distinct values closer than float32 can
  tell apart (diabetes: 0.06345271983825301 and ...305), and a test value may equal a
  midpoint to the last float64 bit; in float32 such rows took the other branch (labels and
  R² changed). Here each feature is replaced, in float64, by its bin: the number of the
  model's thresholds for that feature below x. Then x <= t_k exactly when bin(x) <= k, and
  the tree node compares small integers, which float32 holds exactly. The converted model
  is a copy whose thresholds are those indices; the fitted model is not touched.

- SVR: a Cast; its float32 kernel sums differ from scikit-learn's float64 ones in the
  7th digit (regression with such a member is held to the float tolerance).

Every other part of the graph (scaling, linear models, the vote's average) stays float64;
the island's outputs are cast back to float64. ``register()`` wraps the stock converters of
these classes; with float32 inputs (the fallback precision) they run unchanged.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from typing import Any

import numpy as np
from skl2onnx import get_model_alias
from skl2onnx.algebra.onnx_operator import OnnxSubEstimator
from skl2onnx.algebra.onnx_ops import (
    OnnxCast,
    OnnxIdentity,
    OnnxIsNaN,
    OnnxLess,
    OnnxReduceSumApi11,
    OnnxUnsqueezeApi11,
    OnnxWhere,
)
from skl2onnx.common._registration import RegisteredConverter, _converter_pool
from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType
from sklearn.ensemble import (
    GradientBoostingRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    IsolationForest,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.svm import SVR

from perennial_runtime.train.algorithms import (
    LabelledXGBClassifier,
    LGBMClassifier,
    LGBMRegressor,
    XGBRegressor,
)

FLOAT, DOUBLE = 1, 11  # onnx.TensorProto.FLOAT, DOUBLE
# (float32 model to convert, its float32 input) from (model, float64 input, opset)
Island = Callable[[Any, Any, int], tuple[Any, Any]]


def register() -> None:
    """Idempotent: route float64 inputs of the tree converters through a float32 island."""
    islands: dict[Any, Island] = {
        RandomForestClassifier: _cast,
        RandomForestRegressor: _cast,
        GradientBoostingRegressor: _cast,
        IsolationForest: _cast,
        SVR: _cast,
        HistGradientBoostingClassifier: _hgb_bins,
        HistGradientBoostingRegressor: _hgb_bins,
    }
    if LGBMClassifier is not None and LGBMRegressor is not None:
        islands |= {LGBMClassifier: _lightgbm_bins, LGBMRegressor: _lightgbm_bins}
    if LabelledXGBClassifier is not None and XGBRegressor is not None:
        islands |= {LabelledXGBClassifier: _cast, XGBRegressor: _cast}
    for cls, island in islands.items():
        alias = get_model_alias(cls)
        stock = _converter_pool[alias]
        if not getattr(stock._fct, "perennial", False):
            _converter_pool[alias] = RegisteredConverter(
                _in_float32(stock, island), stock.get_allowed_options()
            )


def _in_float32(stock: Any, island: Island) -> Any:
    def convert(scope: Any, operator: Any, container: Any) -> None:
        x = operator.inputs[0]
        if not isinstance(x.type, DoubleTensorType):
            stock(scope, operator, container)
            return
        opv = container.target_opset
        model, feed = island(operator.raw_operator, x, opv)
        options = {"zipmap": False} if hasattr(model, "predict_proba") else None
        typed = [FloatTensorType(x.type.shape)]  # the algebra API cannot infer a Cast's type
        sub = OnnxSubEstimator(model, feed, op_version=opv, options=options, input_types=typed)
        for i, out in enumerate(operator.outputs):
            if isinstance(out.type, DoubleTensorType):
                node = OnnxCast(sub[i], to=DOUBLE, op_version=opv, output_names=[out])
            else:
                node = OnnxIdentity(sub[i], op_version=opv, output_names=[out])
            node.add_to(scope, container)

    convert.perennial = True  # type: ignore[attr-defined]
    return convert


def _cast(model: Any, x: Any, opv: int) -> tuple[Any, Any]:
    return model, OnnxCast(x, to=FLOAT, op_version=opv)


def _hgb_bins(model: Any, x: Any, opv: int) -> tuple[Any, Any]:
    """HGB: bins in float64; NaN stays NaN so each node's missing-value direction holds."""
    trees = [p for predictors in model._predictors for p in predictors]
    if any(p.nodes["is_categorical"].any() for p in trees):
        raise NotImplementedError("native categorical splits (perennial-train one-hot encodes)")
    splits = [p.nodes[~p.nodes["is_leaf"].astype(bool)] for p in trees]
    features = np.concatenate([s["feature_idx"] for s in splits] or [np.zeros(0)])
    values = np.concatenate([s["num_threshold"] for s in splits] or [np.zeros(0)])
    table = thresholds_by_feature(model.n_features_in_, features, values)
    binned = copy.copy(model)
    binned._predictors = [
        [_Nodes(_hgb_indexed(p.nodes, table)) for p in predictors]
        for predictors in model._predictors
    ]
    nan = OnnxIsNaN(x, op_version=opv)
    as_float = OnnxCast(x, to=FLOAT, op_version=opv)
    return binned, OnnxWhere(nan, as_float, _bins(x, table, opv), op_version=opv)


class _Nodes:
    """What skl2onnx reads of a TreePredictor: its nodes."""

    def __init__(self, nodes: np.ndarray[Any, Any]) -> None:
        self.nodes = nodes


def _hgb_indexed(nodes: np.ndarray[Any, Any], table: list[np.ndarray[Any, Any]]) -> Any:
    out = nodes.copy()
    for i in np.flatnonzero(~nodes["is_leaf"].astype(bool)):
        thresholds = table[nodes["feature_idx"][i]]
        out["num_threshold"][i] = bin_index(thresholds, nodes["num_threshold"][i])
    return out


def _lightgbm_bins(model: Any, x: Any, opv: int) -> tuple[Any, Any]:
    """LightGBM (missing type None everywhere: NaN is read as 0, as LightGBM does)."""
    text = model.booster_.model_to_string()
    features, values = _lightgbm_splits(text)
    table = thresholds_by_feature(model.n_features_in_, features, values)
    indexed = _lightgbm_indexed(text, table)
    from lightgbm import Booster

    binned = copy.copy(model)
    binned._Booster = Booster(model_str=indexed)
    zero = np.zeros((1, 1), dtype=np.float64)
    filled = OnnxWhere(OnnxIsNaN(x, op_version=opv), zero, x, op_version=opv)
    return binned, _bins(filled, table, opv)


_TREE_LINE = re.compile(r"^(split_feature|threshold|decision_type|num_cat)=(.*)$", re.M)


def _lightgbm_splits(text: str) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    features: list[int] = []
    values: list[float] = []
    for block in text.split("\nTree=")[1:]:
        lines = dict(_TREE_LINE.findall(block.split("\n\n")[0]))
        if int(lines.get("num_cat", "0")) > 0:
            raise NotImplementedError("LightGBM categorical splits")
        if "threshold" not in lines:
            continue  # a single leaf
        kinds = [int(v) for v in lines["decision_type"].split()]
        if any(kind & 1 or (kind >> 2) & 3 for kind in kinds):
            raise NotImplementedError("LightGBM splits with a missing-value type")
        features += [int(v) for v in lines["split_feature"].split()]
        values += [float(v) for v in lines["threshold"].split()]
    return np.asarray(features, dtype=np.int64), np.asarray(values, dtype=np.float64)


def _lightgbm_indexed(text: str, table: list[np.ndarray[Any, Any]]) -> str:
    head, *blocks = text.split("\nTree=")
    # tree_sizes gives each block's length in bytes; the indices change those lengths.
    head = "\n".join(line for line in head.split("\n") if not line.startswith("tree_sizes="))
    out = [head]
    for block in blocks:
        lines = dict(_TREE_LINE.findall(block.split("\n\n")[0]))
        if "threshold" in lines:
            pairs = zip(lines["split_feature"].split(), lines["threshold"].split(), strict=True)
            indices = [bin_index(table[int(f)], float(t)) for f, t in pairs]
            new = "threshold=" + " ".join(str(int(i)) for i in indices)
            block = block.replace("threshold=" + lines["threshold"], new, 1)
        out.append(block)
    return "\nTree=".join(out)


def thresholds_by_feature(
    n_features: int, features: np.ndarray[Any, Any], values: np.ndarray[Any, Any]
) -> list[np.ndarray[Any, Any]]:
    """Each feature's distinct finite thresholds, sorted (empty for unused features)."""
    table = []
    for f in range(n_features):
        mine = values[features == f]
        table.append(np.unique(mine[np.isfinite(mine)]))
    return table


def bin_index(thresholds: np.ndarray[Any, Any], value: float) -> float:
    """k with x <= value exactly when bin(x) <= k; +inf (HGB's split on NaN): every bin."""
    if np.isposinf(value):
        return float(len(thresholds))
    k = int(np.searchsorted(thresholds, value))
    if k >= len(thresholds) or thresholds[k] != value:
        raise ValueError(f"threshold {value!r} is not among the feature's thresholds")
    return float(k)


def bins_of(x: np.ndarray[Any, Any], table: list[np.ndarray[Any, Any]]) -> np.ndarray[Any, Any]:
    """What the graph computes, in numpy: per column, how many thresholds lie below x."""
    return np.column_stack([np.searchsorted(t, x[:, f], side="left") for f, t in enumerate(table)])


def _bins(x: Any, table: list[np.ndarray[Any, Any]], opv: int) -> Any:
    width = max(1, max(len(t) for t in table))
    padded = np.full((1, len(table), width), np.inf)
    for f, t in enumerate(table):
        padded[0, f, : len(t)] = t
    below = OnnxLess(padded, OnnxUnsqueezeApi11(x, axes=[2], op_version=opv), op_version=opv)
    counted = OnnxCast(below, to=FLOAT, op_version=opv)
    return OnnxReduceSumApi11(counted, axes=[2], keepdims=0, op_version=opv)
