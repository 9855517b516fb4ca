"""XGBoost on a GPU (issue 19). Not part of `make test`: it needs an NVIDIA GPU and the CUDA
build of XGBoost (the GPU runtime image, or `pip install xgboost` in place of xgboost-cpu).
On such a machine, from the repository root:

    PERENNIAL_GPUS=1 .venv/bin/python -m pytest -m gpu tests/gpu

or inside the GPU runtime image with a GPU given (`--gpus 1`), the same command.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from sklearn.datasets import load_breast_cancer

from perennial_runtime import contract
from perennial_runtime.train.xgboost_models import LabelledXGBClassifier, cuda_built, device
from support.training import run_job

pytestmark = [pytest.mark.gpu, pytest.mark.filterwarnings("ignore::UserWarning")]


def test_a_pod_given_a_gpu_fits_xgboost_on_it():
    assert cuda_built(), "this XGBoost has no CUDA: install the `xgboost` package, not -cpu"
    assert device({"PERENNIAL_GPUS": "1"}) == "cuda"
    X, y = load_breast_cancer(return_X_y=True)
    gpu = LabelledXGBClassifier(n_estimators=50, device="cuda", random_state=0).fit(X, y)
    cpu = LabelledXGBClassifier(n_estimators=50, device="cpu", random_state=0).fit(X, y)
    assert '"device":"cuda' in gpu.get_booster().save_config().replace(" ", "")
    assert abs((gpu.predict(X) == y).mean() - (cpu.predict(X) == y).mean()) < 0.01


def test_the_trainer_on_a_gpu_writes_a_model_the_cpu_serves(tmp_path: Path):
    assert os.environ.get(contract.GPUS_ENV, "0") != "0", "run with PERENNIAL_GPUS=1"
    dataset = {"uri": "builtin://breast_cancer", "target": "target", "seed": 3}
    spec = {"model": "bc", "task": "classification", "algorithm": "xgboost", "dataset": dataset}
    run = run_job(tmp_path, spec)
    assert run.code == contract.EXIT_OK, run.termination
    assert run.termination["metrics"]["roc_auc"] > 0.97
    session = ort.InferenceSession(
        str(run.output / contract.MODEL_ONNX), providers=["CPUExecutionProvider"]
    )
    X = load_breast_cancer(as_frame=True).data.head(20)
    feeds = {i.name: X[[i.name]].to_numpy(dtype=np.float64) for i in session.get_inputs()}
    assert session.run(None, feeds)[0].shape == (20,)
