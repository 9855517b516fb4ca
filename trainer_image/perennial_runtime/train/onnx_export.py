"""Convert a fitted pipeline to ONNX and keep it only if it predicts what the pipeline does.

Inputs are one ONNX input per feature column (shape [N, 1]): float64 for numeric, string
for categorical and text. Double precision is tried first. Tree ensembles go straight to
float32 inputs: scikit-learn itself compares float32(x) with their thresholds, so float32
is the precision that reproduces its decisions (onnxruntime's double tree kernels do not).
Models whose ONNX operators only exist in float32 (SVMs, isolation forest) fall back to it.
Either way the converted model is compared with the pipeline on the held-out split: labels
must be equal and probabilities within 1e-6 (regression: relative difference within the
tolerance of the precision used), else no model.onnx is written and result.json says why.
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
from skl2onnx import convert_sklearn, get_model_alias, update_registered_converter
from skl2onnx.common._registration import _converter_pool
from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType, StringTensorType
from skl2onnx.shape_calculators.imputer import calculate_sklearn_imputer_output_shapes
from sklearn.impute import SimpleImputer

from perennial_runtime.train.algorithms import CLASSIFICATION_TASKS
from perennial_runtime.train.features import Columns
from perennial_runtime.train.pipelines import members_of

TARGET_OPSET = {"": 17, "ai.onnx.ml": 3}
PROBABILITY_TOLERANCE = 1e-6  # absolute, either precision
REGRESSION_TOLERANCE = {"double": 1e-9, "float": 1e-5}  # relative to max(1, |prediction|)
ONNX_TASKS = CLASSIFICATION_TASKS | {"regression", "clustering", "anomaly-detection"}
TREES = frozenset({"random_forest", "gradient_boosting", "isolation_forest"})
# skl2onnx 1.20 builds a TreeEnsemble node onnx rejects for scikit-learn 1.9's HGB models.
UNCONVERTIBLE = {"hist_gradient_boosting": "skl2onnx cannot convert HistGradientBoosting*"}
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

    ``algorithms`` are those inside the model: one, or an ensemble's members (one ONNX
    precision serves them all, so a tree among them means float).
    """
    if task not in ONNX_TASKS:
        return Export(None, {"written": False, "reason": f"no ONNX converter for task {task}"})
    for algorithm in sorted(algorithms):
        if algorithm in UNCONVERTIBLE:
            return Export(None, {"written": False, "reason": UNCONVERTIBLE[algorithm]})
    reasons = []
    for precision in ("float",) if TREES & set(algorithms) else ("double", "float"):
        try:
            model = _convert(pipeline, columns, precision)
            report = compare(task, pipeline, model, columns, X_check, precision)
        except Exception as exc:  # skl2onnx and onnxruntime raise many unrelated types
            reasons.append(f"{precision}: {type(exc).__name__}: {str(exc)[:160]}")
            continue
        if report["matches"]:
            return Export(model, {"written": True, **report})
        reasons.append(f"{precision}: differs from scikit-learn ({report})")
    return Export(None, {"written": False, "reason": "; ".join(reasons)[:600]})


def _convert(pipeline: Any, columns: Columns, precision: str) -> onnx.ModelProto:
    _register_double_imputer()
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
) -> dict[str, Any]:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    outputs = session.run(None, feeds(model, columns, X))
    first = np.ravel(outputs[0])
    if task == "regression":
        expected = pipeline.predict(X)
        diff = float(np.max(np.abs(first - expected) / np.maximum(1.0, np.abs(expected))))
        matches = diff <= REGRESSION_TOLERANCE[precision]
        return {"precision": precision, "maxRelativeDiff": diff, "matches": matches}
    labels_equal = bool(np.array_equal(first, np.asarray(pipeline.predict(X))))
    report: dict[str, Any] = {"precision": precision, "labelsEqual": labels_equal}
    if task in CLASSIFICATION_TASKS and len(outputs) > 1:
        diff = float(np.max(np.abs(outputs[1] - pipeline.predict_proba(X))))
        report["maxProbabilityDiff"] = diff
        labels_equal = labels_equal and diff <= PROBABILITY_TOLERANCE
    return {**report, "matches": labels_equal}


def _register_double_imputer() -> None:
    """Let SimpleImputer run in float64: onnxruntime's Imputer kernel is float32 only."""
    alias = get_model_alias(SimpleImputer)
    original = _converter_pool[alias]
    if getattr(original, "perennial", False):
        return

    def convert(scope: Any, operator: Any, container: Any) -> None:
        stats = getattr(operator.raw_operator, "statistics_", None)
        missing = operator.raw_operator.missing_values
        nan_missing = isinstance(missing, float) and np.isnan(missing)
        if (
            not isinstance(operator.inputs[0].type, DoubleTensorType)
            or stats is None
            or stats.dtype.kind != "f"
            or np.isnan(stats).any()
            or not nan_missing
        ):
            original(scope, operator, container)
            return
        _where_nan(scope, operator, container, stats.astype(np.float64))

    convert.perennial = True  # type: ignore[attr-defined]
    update_registered_converter(
        SimpleImputer, alias, calculate_sklearn_imputer_output_shapes, convert, overwrite=True
    )


def _where_nan(scope: Any, operator: Any, container: Any, stats: np.ndarray[Any, Any]) -> None:
    x = operator.inputs[0].full_name
    if len(operator.inputs) > 1:
        x = scope.get_unique_variable_name("concat")
        names = [i.full_name for i in operator.inputs]
        container.add_node("Concat", names, x, axis=1, name=scope.get_unique_operator_name("C"))
    isnan = scope.get_unique_variable_name("isnan")
    container.add_node("IsNaN", x, isnan, name=scope.get_unique_operator_name("IsNaN"))
    fill = scope.get_unique_variable_name("fill")
    container.add_initializer(fill, onnx.TensorProto.DOUBLE, [1, len(stats)], stats.tolist())
    container.add_node(
        "Where",
        [isnan, fill, x],
        operator.outputs[0].full_name,
        name=scope.get_unique_operator_name("Where"),
    )
