"""The "default AutoML" case: the model examples/trainingjob.yaml trains, as `make demo` does.

perennial-train runs the example manifest unchanged (AutoML, 60 s budget, breast_cancer) with
one native thread, as in its 1-CPU pod; the bench then serves the directory it wrote, and
gives MLServer the very same fitted pipeline (loaded from model.skops, dumped with joblib).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pandas as pd

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "trainingjob.yaml"


@dataclass
class Trained:
    path: Path
    pipeline: Any
    X_test: pd.DataFrame  # feature columns as the pipeline knows them ("mean radius", ...)
    result: dict[str, Any]

    def onnx_session(self) -> ort.InferenceSession:
        return ort.InferenceSession(
            str(self.path / "model.onnx"), providers=["CPUExecutionProvider"]
        )


def train(root: Path) -> Trained:
    out = root / "default-automl"
    if not (out / "result.json").exists():
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        script = Path(sys.executable).parent / "perennial-train"
        command = [str(script), "-f", str(EXAMPLE)]
        command += ["--output", str(out), "--termination-log", str(root / "termination-log")]
        subprocess.run(command, check=True, env=env, timeout=900)
    from perennial_runtime.train.persist import load_model

    pipeline = load_model(out / "model.skops")
    result = json.loads((out / "result.json").read_text())
    signature = json.loads((out / "signature.json").read_text())
    names = [i["name"] for i in signature["inputs"]]
    from sklearn.datasets import load_breast_cancer

    frame = load_breast_cancer(as_frame=True).frame
    X_test = frame[names].iloc[-114:].astype(np.float64)
    return Trained(out, pipeline, X_test, result)
