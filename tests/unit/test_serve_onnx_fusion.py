"""onnx_predictor.fuse_numeric_inputs: one [N, k] input instead of k columns, same answers.

A pipeline's ColumnTransformer glues the columns back together; after fusing, that Concat
reads the fused input directly and no Split is left (a vote has one such Concat per member).
"""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from sklearn.datasets import load_wine

from perennial_runtime.serve.onnx_predictor import FUSED, fuse_numeric_inputs
from perennial_runtime.train.features import Columns
from perennial_runtime.train.onnx_export import convert, feeds
from perennial_runtime.train.pipelines import build_ensemble

pytestmark = pytest.mark.unit


def _run(model: onnx.ModelProto, inputs: dict) -> list:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, inputs)


def test_a_vote_reads_the_fused_input_with_no_split_and_answers_the_same() -> None:
    X, y = load_wine(return_X_y=True, as_frame=True)
    columns = Columns(numeric=tuple(X.columns))
    members = [("logistic_regression", {}, 1), ("random_forest", {"n_estimators": 10}, 1)]
    model = build_ensemble("classification", members, columns).fit(X, y)
    graph = convert(model, columns, "double")
    expected = _run(graph, feeds(graph, columns, X))
    concats = sum(n.op_type == "Concat" for n in graph.graph.node)
    names = fuse_numeric_inputs(graph, [i.name for i in graph.graph.input])
    assert len(names) == X.shape[1]
    ops = [n.op_type for n in graph.graph.node]
    assert "Split" not in ops and ops.count("Concat") == concats - len(members)
    assert [i.name for i in graph.graph.input] == [FUSED]
    got = _run(graph, {FUSED: X.to_numpy(np.float64)})
    np.testing.assert_array_equal(got[0], expected[0])
    np.testing.assert_array_equal(got[1], expected[1])


def test_a_graph_that_reads_single_columns_keeps_its_split() -> None:
    from onnx import TensorProto, helper

    a = helper.make_tensor_value_info("a", TensorProto.DOUBLE, [None, 1])
    b = helper.make_tensor_value_info("b", TensorProto.DOUBLE, [None, 1])
    out = helper.make_tensor_value_info("y", TensorProto.DOUBLE, [None, 1])
    graph = helper.make_graph([helper.make_node("Sub", ["a", "b"], ["y"])], "g", [a, b], [out])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    assert fuse_numeric_inputs(model, ["a", "b"]) == ["a", "b"]
    assert [n.op_type for n in model.graph.node] == ["Split", "Sub"]
    (y,) = _run(model, {FUSED: np.array([[3.0, 1.0], [5.0, 7.0]])})
    np.testing.assert_array_equal(y, [[2.0], [-2.0]])
