"""The BentoML peer: the same scikit-learn pipeline, adaptive batching on (BentoML's
recommended set-up for a small model), BentoML's default latency budget (a tight one
makes it shed load with 503s). Run by ``bentoml serve`` in the peers' venv."""

from __future__ import annotations

import os

import bentoml
import joblib
import numpy as np


@bentoml.service(workers=int(os.environ.get("BENCH_WORKERS", "1")))
class Model:
    def __init__(self) -> None:
        self.model = joblib.load(os.environ["BENCH_MODEL"])

    @bentoml.api(batchable=True, max_batch_size=64)
    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.model.predict(x)
