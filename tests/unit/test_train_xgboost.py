"""XGBoost as a family (issue 19): any labels, ONNX through onnxmltools with the same labels
and probabilities, skops with the trusted list, the GPU only when the pod was given one and
the build has CUDA. (Every dataset × family parity: test_train_onnx_parity.py; the GPU
itself: tests/gpu/, run on a GPU machine.)"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pandas as pd
import pytest
import skops.io as sio

from perennial_runtime import contract
from perennial_runtime.train.xgboost_models import LabelledXGBClassifier, device
from support.training import run_job

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("env", "cuda", "expected"),
    [
        ({}, True, "cpu"),
        ({"PERENNIAL_GPUS": "0"}, True, "cpu"),
        ({"PERENNIAL_GPUS": "1"}, True, "cuda"),
        ({"PERENNIAL_GPUS": "2"}, False, "cpu"),  # a GPU given, a CPU-only build: the CPU
        ({"PERENNIAL_GPUS": "one"}, True, "cpu"),
    ],
)
def test_the_gpu_is_used_only_when_given_and_built_for(env, cuda, expected):
    assert device(env, cuda=cuda) == expected


def test_the_cpu_runtime_build_has_no_cuda():
    # What the runtime extra installs (xgboost-cpu): the GPU image swaps the build.
    assert device({"PERENNIAL_GPUS": "1"}) == "cpu"


@pytest.mark.parametrize("labels", [["churn", "stay", "maybe"], [3, 7, 11]])
def test_labels_are_the_datasets_own(labels):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 4))
    y = np.asarray(labels, dtype=object if isinstance(labels[0], str) else int)[
        np.digitize(X[:, 0], [-0.4, 0.4])
    ]
    model = LabelledXGBClassifier(n_estimators=20, max_depth=3, random_state=0).fit(X, y)
    assert list(model.classes_) == sorted(labels)
    assert (model.predict(X) == y).mean() > 0.95
    again = LabelledXGBClassifier(n_estimators=20, max_depth=3, random_state=0).fit(X, y)
    assert np.array_equal(again.predict_proba(X), model.predict_proba(X))  # deterministic
    data = sio.dumps(model)
    assert set(sio.get_untrusted_types(data=data)) <= set(contract.SKOPS_TRUSTED_TYPES)
    loaded = sio.loads(data, trusted=list(contract.SKOPS_TRUSTED_TYPES))
    assert np.array_equal(loaded.predict(X), model.predict(X))


def test_a_string_labelled_csv_trains_and_exports_onnx_with_its_labels(tmp_path: Path):
    rng = np.random.default_rng(1)
    n = 400
    frame = pd.DataFrame({"tenure": rng.integers(1, 60, n).astype(float),
                          "spend": rng.lognormal(3, 0.5, n),
                          "plan": rng.choice(["basic", "pro"], n)})  # fmt: skip
    frame["outcome"] = np.where(frame["tenure"] < 20, "leaves", "stays")
    frame.loc[frame.sample(frac=0.1, random_state=1).index, "spend"] = np.nan
    csv = tmp_path / "churn.csv"
    frame.to_csv(csv, index=False)
    spec = {"model": "churn", "task": "classification", "algorithm": "xgboost",
            "hyperparameters": {"n_estimators": 30},
            "dataset": {"uri": f"file://{csv}", "target": "outcome", "seed": 3}}  # fmt: skip
    run = run_job(tmp_path / "job", spec)
    assert run.code == contract.EXIT_OK, run.termination
    assert run.termination["metrics"]["roc_auc"] > 0.95
    result = json.loads((run.output / contract.RESULT).read_text())
    assert result["onnx"]["matches"] is True and result["onnx"]["precision"] == "double"
    signature = json.loads((run.output / contract.SIGNATURE).read_text())
    assert signature["classes"] == ["leaves", "stays"]
    # onnxruntime here, independently: the graph answers with the dataset's labels.
    session = ort.InferenceSession(str(run.output / contract.MODEL_ONNX))
    rows = frame.drop(columns="outcome").head(50)
    feeds = {
        i.name: rows[[i.name]].to_numpy(dtype=np.float64 if i.type == "tensor(double)" else object)
        for i in session.get_inputs()
    }
    onnx_labels = session.run(None, feeds)[0]
    assert set(onnx_labels) <= {"leaves", "stays"}
    assert (onnx_labels == frame["outcome"].head(50).to_numpy()).mean() > 0.9
