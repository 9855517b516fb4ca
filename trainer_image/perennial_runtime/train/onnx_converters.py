"""What skl2onnx needs beyond its own converters to export every model perennial-train fits.

- HistGradientBoosting*: the protobuf shim (onnx_shim.py) until skl2onnx ships its fix.
- Tree ensembles in a float64 graph: onnx_trees.py (exact splits, float32 tree kernels).
- LightGBM and XGBoost (when installed): onnxmltools' converters, registered with skl2onnx
  so that such a pipeline, or a vote with such a member, converts to one graph.
- SimpleImputer in float64: onnxruntime's Imputer kernel is float32 only, so a double
  pipeline gets an IsNaN/Where pair instead.

``register()`` is idempotent; onnx_export.py calls it before every conversion.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
from skl2onnx import get_model_alias, update_registered_converter
from skl2onnx.common._registration import _converter_pool
from skl2onnx.common.data_types import DoubleTensorType
from skl2onnx.common.shape_calculator import (
    calculate_linear_classifier_output_shapes,
    calculate_linear_regressor_output_shapes,
)
from skl2onnx.shape_calculators.imputer import calculate_sklearn_imputer_output_shapes
from sklearn.impute import SimpleImputer

from perennial_runtime.train import onnx_shim, onnx_trees
from perennial_runtime.train.algorithms import (
    LabelledXGBClassifier,
    LGBMClassifier,
    LGBMRegressor,
    XGBRegressor,
)


def register() -> None:
    onnx_shim.install()
    _register_double_imputer()
    _register_lightgbm()
    _register_xgboost()
    onnx_trees.register()


def _register_lightgbm() -> None:
    if LGBMClassifier is None or LGBMRegressor is None:
        return
    if "LightGbmLGBMClassifier" in _converter_pool:
        return
    from onnxmltools.convert.lightgbm.operator_converters.LightGbm import convert_lightgbm

    update_registered_converter(
        LGBMClassifier,
        "LightGbmLGBMClassifier",
        calculate_linear_classifier_output_shapes,
        convert_lightgbm,
        options={"nocl": [True, False], "zipmap": [True, False, "columns"]},
    )
    update_registered_converter(
        LGBMRegressor,
        "LightGbmLGBMRegressor",
        calculate_linear_regressor_output_shapes,
        convert_lightgbm,
        options={"split": None},
    )


def _register_xgboost() -> None:
    if LabelledXGBClassifier is None or XGBRegressor is None:
        return
    if "PerennialXGBClassifier" in _converter_pool:
        return
    from onnxmltools.convert.xgboost.operator_converters.XGBoost import convert_xgboost

    # The classifier's labels come from its classes_ (the dataset's own, strings or ints).
    update_registered_converter(
        LabelledXGBClassifier,
        "PerennialXGBClassifier",
        calculate_linear_classifier_output_shapes,
        convert_xgboost,
        options={"nocl": [True, False], "zipmap": [True, False, "columns"]},
    )
    update_registered_converter(
        XGBRegressor,
        "XGBoostXGBRegressor",
        calculate_linear_regressor_output_shapes,
        convert_xgboost,
    )


def _register_double_imputer() -> None:
    """Let SimpleImputer run in float64: onnxruntime's Imputer kernel is float32 only."""
    alias = get_model_alias(SimpleImputer)
    original = _converter_pool[alias]
    if getattr(original._fct, "perennial", False):
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
