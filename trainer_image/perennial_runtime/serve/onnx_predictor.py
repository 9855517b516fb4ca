"""Predict with onnxruntime, feeding the numeric features as one tensor.

perennial-train exports one ONNX input per column ([N, 1] each). Binding thirty tiny
inputs costs onnxruntime far more than the model itself (about 100 us against 10 us for
a logistic regression), so at load time the per-column numeric inputs are replaced by one
[N, k] input and a Split node inside the graph that recreates them under their old names;
a Concat that glues exactly those columns back together (each pipeline's preprocessing
starts with one) reads the fused input instead, and the Split goes when nothing else
reads the columns. The arithmetic is untouched; if the rewrite is not possible the
original graph is used.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from perennial_runtime.serve.signature import Signature

FUSED = "perennial_numeric"
_ORT_DTYPES = {
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(string)": np.object_,
}


class UnknownInputError(Exception):
    """The ONNX graph has an input that is not a signature feature."""


def fuse_numeric_inputs(model: Any, numeric: list[str]) -> list[str]:
    """Rewrite ``model`` in place; return the fused input names, in order ([] if none)."""
    import onnx
    from onnx import helper, numpy_helper

    graph = model.graph
    columns = [i for i in graph.input if i.name in numeric and _is_column(i)]
    kinds = {i.type.tensor_type.elem_type for i in columns}
    if len(columns) < 2 or len(kinds) != 1:
        return []
    names = [i.name for i in columns]
    opset = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)
    if opset >= 13:  # split sizes became an input in opset 13
        sizes = numpy_helper.from_array(np.ones(len(names), dtype=np.int64), FUSED + "_sizes")
        graph.initializer.append(sizes)
        split = helper.make_node("Split", [FUSED, sizes.name], names, axis=1)
    else:
        split = helper.make_node("Split", [FUSED], names, axis=1, split=[1] * len(names))
    others = [i for i in graph.input if i.name not in names]
    fused = helper.make_tensor_value_info(FUSED, kinds.pop(), [None, len(names)])
    del graph.input[:]
    graph.input.extend([fused, *others])
    if not _skip_concats(graph, names):
        graph.node.insert(0, split)
    elif opset >= 13:
        graph.initializer.pop()  # the split sizes
    onnx.checker.check_model(model)
    return names


def _skip_concats(graph: Any, names: list[str]) -> bool:
    """Each pipeline of the graph glues the columns back together (a Concat of exactly the
    split outputs, in order); those read the fused input directly instead. True when
    nothing reads the single columns any more (then no Split is needed)."""
    if any(a.g.node or a.graphs for node in graph.node for a in node.attribute):
        return False  # subgraphs may read the columns by name
    outputs = {o.name for o in graph.output}
    replaced: dict[str, str] = {}
    kept = []
    for node in graph.node:
        axis = next((a.i for a in node.attribute if a.name == "axis"), None)
        if node.op_type == "Concat" and axis == 1 and list(node.input) == names:
            if node.output[0] not in outputs:
                replaced[node.output[0]] = FUSED
                continue
        kept.append(node)
    for node in kept:
        for i, name in enumerate(node.input):
            if name in replaced:
                node.input[i] = replaced[name]
    del graph.node[:]
    graph.node.extend(kept)
    wanted = set(names)
    return not any(name in wanted for node in kept for name in node.input)


def _is_column(value_info: Any) -> bool:
    dims = value_info.type.tensor_type.shape.dim
    return len(dims) == 2 and dims[1].dim_value == 1


class OnnxPredictor:
    def __init__(self, file: Path, signature: Signature) -> None:
        import onnx

        # signature.onnx.input_names follow the features in order; the graph's names may
        # differ (skl2onnx-safe names, e.g. "mean_radius" for "mean radius").
        onnx_names = signature.onnx_inputs
        feature_of: dict[str, str] = {}
        if len(onnx_names) == len(signature.names):
            feature_of = dict(zip(onnx_names, signature.names, strict=True))
        numeric = [f.name for f in signature.numeric_features]
        categorical = [f.name for f in signature.categorical_features]
        model = onnx.load(str(file))
        graph_numeric = [n for n in (i.name for i in model.graph.input)
                         if feature_of.get(n, n) in numeric]  # fmt: skip
        try:
            fused = fuse_numeric_inputs(model, graph_numeric)
        except Exception:  # an unusual graph: serve it as exported
            model, fused = onnx.load(str(file)), []
        self._session = _session(model.SerializeToString())
        self._outputs = list(signature.onnx_outputs) or [
            o.name for o in self._session.get_outputs()
        ]
        self._classification = signature.classification
        inputs = self._session.get_inputs()
        self.float32 = any(i.type == "tensor(float)" for i in inputs)
        self._fused: tuple[str, Any, list[int] | None] | None = None
        self._columns: list[tuple[str, bool, int, Any]] = []
        for item in inputs:
            dtype = _ORT_DTYPES.get(item.type, np.float32)
            feature = feature_of.get(item.name, item.name)
            if item.name == FUSED or (len(inputs) == 1 and feature not in signature.names):
                order = [numeric.index(feature_of.get(n, n)) for n in fused] if fused else None
                self._fused = (item.name, dtype, None if order == sorted(order or []) else order)
            elif feature in numeric:
                self._columns.append((item.name, True, numeric.index(feature), dtype))
            elif feature in categorical:
                self._columns.append((item.name, False, categorical.index(feature), np.object_))
            else:
                raise UnknownInputError(
                    f"model.onnx input {item.name!r} is not a signature feature"
                )

    def predict(
        self, numeric: np.ndarray, categorical: np.ndarray | None, proba: bool
    ) -> tuple[np.ndarray, np.ndarray | None]:
        feeds: dict[str, np.ndarray] = {}
        if self._fused is not None:
            name, dtype, order = self._fused
            block = numeric if order is None else numeric[:, order]
            feeds[name] = block.astype(dtype, copy=False)
        for name, is_numeric, index, dtype in self._columns:
            if is_numeric:
                feeds[name] = numeric[:, index : index + 1].astype(dtype)
            else:
                assert categorical is not None
                feeds[name] = missing_as_empty(categorical[:, index : index + 1])
        out = self._session.run(self._outputs, feeds)
        if not self._classification:
            return np.asarray(out[0]).reshape(-1), None
        probabilities = np.asarray(out[1], dtype=np.float64) if len(out) > 1 else None
        return np.asarray(out[0]).reshape(-1), probabilities


def _session(model_bytes: bytes) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    # One thread per session: the server already runs one worker process per CPU.
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])


def missing_as_empty(column: np.ndarray) -> np.ndarray:
    """perennial-train encodes a missing category as "" before fitting (ONNX string
    tensors cannot hold None), so the server does the same."""
    return np.where(column == None, "", column).astype(np.object_)  # noqa: E711
