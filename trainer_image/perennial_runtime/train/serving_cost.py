"""What a fitted model will cost to serve: the time of one single-row predict, measured here.

The model is timed the way perennial-serve would run it: converted to ONNX (numeric inputs
fused into one tensor, one onnxruntime thread, probabilities included) when the task has a
converter, else, or when the conversion fails, through scikit-learn. AutoML measures every
candidate on the model of its last fold (automl.servingLatencyBudgetMs excludes those over
the budget, and an ensemble's cost is the sum of its members'); the final model is measured
again once written, in the format actually shipped.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pandas as pd

from perennial_runtime.serve.onnx_predictor import FUSED, fuse_numeric_inputs
from perennial_runtime.train.algorithms import CLASSIFICATION_TASKS
from perennial_runtime.train.features import Columns
from perennial_runtime.train.onnx_export import ONNX_TASKS, convert, feeds

WARMUP_CALLS = 3
MAX_CALLS = 30
MAX_SECONDS = 0.15


@dataclass(frozen=True)
class Cost:
    ms_per_row: float  # median of single-row calls
    format: str  # onnx | skops: how it was timed (and would be served)

    def report(self) -> dict[str, Any]:
        return {"servingMs": round(self.ms_per_row, 4), "servedAs": self.format}


def measure(task: str, model: Any, columns: Columns, rows: pd.DataFrame) -> Cost:
    """The serving cost of ``model`` on the first row of ``rows``."""
    row = rows.head(1)
    if task in ONNX_TASKS:
        try:
            call = _onnx_call(convert(model, columns, "double"), columns, row)
            return Cost(time_calls(call), "onnx")
        except Exception:  # noqa: BLE001 - no ONNX form: it would be served from skops
            pass
    return Cost(time_calls(_sklearn_call(task, model, row)), "skops")


def measure_onnx(model_proto: Any, columns: Columns, rows: pd.DataFrame) -> float:
    return time_calls(_onnx_call(model_proto, columns, rows.head(1)))


def measure_sklearn(task: str, model: Any, rows: pd.DataFrame) -> float:
    return time_calls(_sklearn_call(task, model, rows.head(1)))


def time_calls(call: Callable[[], object]) -> float:
    """Median milliseconds of ``call`` after a warm-up, within a small time cap."""
    for _ in range(WARMUP_CALLS):
        call()
    samples: list[float] = []
    deadline = time.perf_counter() + MAX_SECONDS
    while len(samples) < MAX_CALLS and (len(samples) < 3 or time.perf_counter() < deadline):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1e3)
    return statistics.median(samples)


def _sklearn_call(task: str, model: Any, row: pd.DataFrame) -> Callable[[], object]:
    if task in CLASSIFICATION_TASKS and hasattr(model, "predict_proba"):
        return lambda: model.predict_proba(row)
    return lambda: model.predict(row)


def _onnx_call(model_proto: Any, columns: Columns, row: pd.DataFrame) -> Callable[[], object]:
    fused_model = onnx.ModelProto()
    fused_model.CopyFrom(model_proto)
    inputs = feeds(model_proto, columns, row)
    numeric = [i.name for i in model_proto.graph.input if _numeric(i)]
    fused = fuse_numeric_inputs(fused_model, numeric)
    if fused:
        inputs[FUSED] = np.hstack([inputs.pop(name) for name in fused])
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    session = ort.InferenceSession(
        fused_model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    return lambda: session.run(None, inputs)


def _numeric(graph_input: Any) -> bool:
    elem = graph_input.type.tensor_type.elem_type
    return elem in (onnx.TensorProto.DOUBLE, onnx.TensorProto.FLOAT)
