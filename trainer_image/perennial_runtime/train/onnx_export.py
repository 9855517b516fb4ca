"""Convert a fitted pipeline to ONNX and keep it only if it predicts what the pipeline does.

Every model perennial-train fits for a task in ONNX_TASKS converts (an ensemble to one
graph); onnx_converters.py registers what skl2onnx lacks. Inputs are one ONNX input per
feature column (shape [N, 1]): float64 for numeric, string for categorical and text.
Double precision is tried first, float32 second. In a double graph every tree ensemble
runs as a float32 island whose splits are exactly scikit-learn's or LightGBM's
(onnx_trees.py); its leaf sums are float32, so regression with trees is held to the float
tolerance (so is SVR, whose onnxruntime kernel is float32 too). The converted model is
compared with the pipeline on the held-out split: labels must be equal and probabilities
within 1e-5 (regression: relative difference within the tolerance), else no model.onnx is
written and result.json says why.
"""

from __future__ import annotations

import warnings
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pandas as pd
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType, StringTensorType

from perennial_runtime.train import onnx_converters
from perennial_runtime.train.algorithms import CLASSIFICATION_TASKS
from perennial_runtime.train.features import Columns
from perennial_runtime.train.pipelines import members_of

TARGET_OPSET = {"": 17, "ai.onnx.ml": 3}
PROBABILITY_TOLERANCE = 1e-5  # absolute, either precision
REGRESSION_TOLERANCE = {"double": 1e-9, "float": 1e-5}  # relative to max(1, |prediction|)
ONNX_TASKS = CLASSIFICATION_TASKS | {"regression", "clustering", "anomaly-detection"}
# Families that run as float32 islands in a float64 graph (onnx_trees.py).
FLOAT32_KERNELS = frozenset(
    {
        "random_forest",
        "gradient_boosting",
        "hist_gradient_boosting",
        "lightgbm",
        "xgboost",
        "isolation_forest",
        "svr",
    }
)
TEXT_LOCALE = "C.UTF-8"  # present in Debian images; onnxruntime's default en_US.UTF-8 is not


@dataclass
class Export:
    model: onnx.ModelProto | None
    report: dict[str, Any]


def export(
    task: str,
    algorithms: Collection[str],
    pipeline: Any,
    columns: Columns,
    X_check: pd.DataFrame,
) -> Export:
    """Try double, then float; return the first conversion that matches the pipeline.

    ``algorithms`` are those inside the model: one, or an ensemble's members.
    """
    if task not in ONNX_TASKS:
        return Export(None, {"written": False, "reason": f"no ONNX converter for task {task}"})
    reasons = []
    trees = bool(FLOAT32_KERNELS & set(algorithms))
    for precision in ("double", "float"):
        try:
            model = convert(pipeline, columns, precision)
            report = compare(task, pipeline, model, columns, X_check, precision, trees)
        except Exception as exc:  # skl2onnx and onnxruntime raise many unrelated types
            reasons.append(f"{precision}: {type(exc).__name__}: {str(exc)[:160]}")
            continue
        if report["matches"]:
            return Export(model, {"written": True, **report})
        reasons.append(f"{precision}: differs from scikit-learn ({report})")
    return Export(None, {"written": False, "reason": "; ".join(reasons)[:600]})


def convert(pipeline: Any, columns: Columns, precision: str) -> onnx.ModelProto:
    onnx_converters.register()
    number = DoubleTensorType if precision == "double" else FloatTensorType
    types: list[tuple[str, Any]] = [(n, number([None, 1])) for n in columns.numeric]
    types += [(n, StringTensorType([None, 1])) for n in columns.categorical]
    if columns.text:
        types.append((columns.text, StringTensorType([None, 1])))
    options: dict[Any, Any] = {}
    if hasattr(pipeline, "predict_proba"):
        options[id(pipeline)] = {"zipmap": False}
    if columns.text:
        for member in members_of(pipeline):
            vectorizer = member.named_steps["preprocess"].named_transformers_["text"]
            options[id(vectorizer)] = {"locale": TEXT_LOCALE}
    with warnings.catch_warnings():
        # skl2onnx reads SVC.probA_/probB_, deprecated in scikit-learn 1.9 (still right).
        warnings.filterwarnings("ignore", message=".*prob[AB]_", category=FutureWarning)
        model: onnx.ModelProto = convert_sklearn(
            pipeline, initial_types=types, options=options or None, target_opset=TARGET_OPSET
        )
    _drop_unused_initializers(model.graph)
    return model


def _drop_unused_initializers(graph: onnx.GraphProto) -> None:
    # skl2onnx's voting converters leave a constant no node reads ('classes_ind'), which
    # onnxruntime reports on stderr every time a session loads the model.
    if any(a.g.node or a.graphs for node in graph.node for a in node.attribute):
        return  # subgraphs may read outer initializers; leave such a graph alone
    used = {name for node in graph.node for name in node.input}
    used |= {output.name for output in graph.output}
    kept = [i for i in graph.initializer if i.name in used]
    if len(kept) < len(graph.initializer):
        del graph.initializer[:]
        graph.initializer.extend(kept)


def feeds(model: onnx.ModelProto, columns: Columns, X: pd.DataFrame) -> dict[str, Any]:
    """The ONNX inputs for frame ``X``; graph inputs follow the feature column order."""
    out = {}
    for graph_input, name in zip(model.graph.input, columns.features, strict=True):
        elem = graph_input.type.tensor_type.elem_type
        dtype = {onnx.TensorProto.DOUBLE: np.float64, onnx.TensorProto.FLOAT: np.float32}
        out[graph_input.name] = X[[name]].to_numpy(dtype=dtype.get(elem, object))
    return out


def compare(
    task: str,
    pipeline: Any,
    model: onnx.ModelProto,
    columns: Columns,
    X: pd.DataFrame,
    precision: str,
    trees: bool = False,
) -> dict[str, Any]:
    """Does ``model`` predict what ``pipeline`` does on ``X``? ``trees``: it holds float32
    islands (tree ensembles, SVR), whose sums get the float tolerance in regression."""
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    outputs = session.run(None, feeds(model, columns, X))
    first = np.ravel(outputs[0])
    if task == "regression":
        expected = pipeline.predict(X)
        diff = float(np.max(np.abs(first - expected) / np.maximum(1.0, np.abs(expected))))
        matches = diff <= REGRESSION_TOLERANCE["float" if trees else precision]
        return {"precision": precision, "maxRelativeDiff": diff, "matches": matches}
    labels_equal = bool(np.array_equal(first, np.asarray(pipeline.predict(X))))
    report: dict[str, Any] = {"precision": precision, "labelsEqual": labels_equal}
    if task in CLASSIFICATION_TASKS and len(outputs) > 1:
        diff = float(np.max(np.abs(outputs[1] - pipeline.predict_proba(X))))
        report["maxProbabilityDiff"] = diff
        labels_equal = labels_equal and diff <= PROBABILITY_TOLERANCE
    return {**report, "matches": labels_equal}
