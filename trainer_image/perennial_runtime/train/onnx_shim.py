"""A shim for skl2onnx's HistGradientBoosting converter, to delete once skl2onnx ships its fix.

skl2onnx 1.20.0 appends a Python ``False`` (one per leaf) to the integer-list attribute
``nodes_missing_value_tracks_true`` of TreeEnsembleClassifier/Regressor. protobuf 6 only
warned about a bool in ``AttributeProto.ints``; protobuf >= 7.34 refuses it ("Expected an
int, got a boolean"), so no HistGradientBoosting* model converts. The fix upstream is
onnx/sklearn-onnx PR #1256 (unreleased when this was written).

Why a shim and not ``protobuf<7.34``: an upper bound on protobuf would hold back every other
package that uses it (onnx, onnxruntime) for one converter's sake; this wraps only the
function that fills those lists, in the one converter module that calls it, and turns the
bools into the 0/1 the attribute means after each tree. It changes nothing else, and the
parity check still compares every converted model with scikit-learn.

tests/unit/test_train_onnx_shim.py fails as soon as stock skl2onnx converts an HGB model
(then delete this module and its ``install()`` call), and when the shim stops working.
"""

from __future__ import annotations

from typing import Any

from skl2onnx.operator_converters import random_forest

ATTRIBUTE = "nodes_missing_value_tracks_true"
ORIGINAL = random_forest.add_tree_to_attribute_pairs_hist_gradient_boosting


def _hgb_tree_as_ints(attr_pairs: dict[str, Any], *args: Any, **kwargs: Any) -> None:
    ORIGINAL(attr_pairs, *args, **kwargs)
    attr_pairs[ATTRIBUTE] = [int(value) for value in attr_pairs[ATTRIBUTE]]


def install() -> None:
    """Idempotent: route the HGB converter's tree builder through the cast."""
    random_forest.add_tree_to_attribute_pairs_hist_gradient_boosting = _hgb_tree_as_ints
