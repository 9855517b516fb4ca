"""signature.json: what the model takes and returns, for the server and the ModelVersion."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
import pandas as pd

from perennial_runtime.train.algorithms import CLASSIFICATION_TASKS
from perennial_runtime.train.features import MISSING_CATEGORY, Columns

MAX_LISTED_CATEGORIES = 100


def build_signature(
    task: str,
    model: Any,
    columns: Columns,
    X_train: pd.DataFrame,
    onnx_model: onnx.ModelProto | None,
) -> dict[str, Any]:
    signature: dict[str, Any] = {
        "task": task,
        "inputs": _inputs(columns, X_train),
        "outputs": _outputs(task, model),
    }
    if task in CLASSIFICATION_TASKS:
        signature["classes"] = [_plain(c) for c in model.classes_]
    if onnx_model is not None:
        signature["onnx"] = {
            "input_names": [i.name for i in onnx_model.graph.input],
            "output_names": [o.name for o in onnx_model.graph.output],
        }
    return signature


def _inputs(columns: Columns, X: pd.DataFrame) -> list[dict[str, Any]]:
    inputs: list[dict[str, Any]] = [{"name": n, "datatype": "FP64"} for n in columns.numeric]
    for name in columns.categorical:
        seen = sorted({v for v in X[name].tolist() if v != MISSING_CATEGORY})
        entry: dict[str, Any] = {"name": name, "datatype": "BYTES"}
        if len(seen) <= MAX_LISTED_CATEGORIES:
            entry["categories"] = seen
        inputs.append(entry)
    if columns.text:
        inputs.append({"name": columns.text, "datatype": "BYTES"})
    return inputs


def _outputs(task: str, model: Any) -> list[dict[str, Any]]:
    if task in CLASSIFICATION_TASKS:
        classes = np.asarray(model.classes_)
        return [
            {"name": "label", "datatype": _datatype(classes)},
            {"name": "probabilities", "datatype": "FP64", "shape": [-1, len(classes)]},
        ]
    if task in ("regression", "recommendation"):
        return [{"name": "prediction", "datatype": "FP64"}]
    if task == "anomaly-detection":
        # label: -1 anomaly, 1 normal (scikit-learn's convention); scores: lower is stranger.
        return [{"name": "label", "datatype": "INT64"}, {"name": "scores", "datatype": "FP64"}]
    return [{"name": "label", "datatype": "INT64"}]


def _datatype(values: np.ndarray[Any, Any]) -> str:
    if values.dtype.kind in "iub":
        return "INT64"
    if values.dtype.kind == "f":
        return "FP64"
    return "BYTES"


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value
