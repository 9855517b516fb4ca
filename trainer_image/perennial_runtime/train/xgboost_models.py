"""XGBoost in perennial-train: its estimators for any labels, on the GPU when the pod has one.

- ``LabelledXGBClassifier``: XGBoost accepts only the labels 0..k-1; the trainer's datasets
  carry strings or arbitrary integers. Labels are encoded for fitting, and ``classes_`` and
  ``predict`` speak the dataset's labels again (evaluation, the signature and the ONNX
  converter read ``classes_``). Its skops state is XGBoost's own model buffer (no pickle).
- ``device()``: ``cuda`` when the operator gave the pod GPUs (``PERENNIAL_GPUS`` > 0, set
  with the ``nvidia.com/gpu`` request) and this XGBoost was built with CUDA (the GPU image);
  the CPU otherwise. A pod with GPUs but a CPU-only XGBoost trains on the CPU.

Importing this module needs xgboost (``xgboost-cpu`` in the runtime extra; the GPU image
installs the CUDA build instead).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np
from xgboost import XGBClassifier, XGBRegressor, build_info

from perennial_runtime.contract import GPUS_ENV

__all__ = ["GPUS_ENV", "LabelledXGBClassifier", "XGBRegressor", "cuda_built", "device"]


def cuda_built() -> bool:
    return bool(build_info().get("USE_CUDA"))


def device(environ: Mapping[str, str] = os.environ, cuda: bool | None = None) -> str:
    """Where XGBoost fits: "cuda" with a GPU given and a CUDA build, else "cpu"."""
    given = environ.get(GPUS_ENV, "0")
    gpus = int(given) if given.isdigit() else 0
    return "cuda" if gpus > 0 and (cuda_built() if cuda is None else cuda) else "cpu"


class LabelledXGBClassifier(XGBClassifier):  # type: ignore[misc]
    """XGBClassifier whose labels are the dataset's own (strings, any integers)."""

    def fit(self, X: Any, y: Any, **kwargs: Any) -> LabelledXGBClassifier:  # noqa: N803
        labels, encoded = np.unique(np.asarray(y), return_inverse=True)
        # XGBoost checks the encoded labels against classes_ while fitting: 0..k-1 then.
        self.__dict__.pop("labels_", None)
        super().fit(X, encoded, **kwargs)
        self.labels_ = labels
        return self

    def predict(self, X: Any, **kwargs: Any) -> Any:  # noqa: N803
        return self.classes_[np.asarray(super().predict(X, **kwargs), dtype=int)]

    @property
    def classes_(self) -> Any:
        labels = self.__dict__.get("labels_")
        return np.arange(self.n_classes_) if labels is None else labels
