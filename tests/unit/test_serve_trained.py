"""The contract end to end: perennial-train writes a model directory, perennial-serve
verifies it against the ModelVersion digest and answers what the trained model predicts."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from serve_support.server import ServerProcess
from sklearn.datasets import load_breast_cancer

from perennial_runtime import contract
from perennial_runtime.train.persist import load_model

pytestmark = pytest.mark.unit

JOB = {
    "apiVersion": "perennial.dev/v1alpha1",
    "kind": "TrainingJob",
    "metadata": {"name": "bc"},
    "spec": {
        "model": "breast-cancer",
        "task": "classification",
        "algorithm": "random_forest",
        "hyperparameters": {"n_estimators": 20},
        "dataset": {"uri": "builtin://breast_cancer", "target": "target", "testFraction": 0.2},
        "resources": {"cpu": "1"},
        "computePool": "cpu-small",
    },
}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("trained")
    (root / "job.yaml").write_text(yaml.safe_dump(JOB))
    script = Path(sys.executable).parent / "perennial-train"
    done = subprocess.run(
        [str(script), "-f", str(root / "job.yaml"), "--output", str(root / "model"),
         "--termination-log", str(root / "termination-log")],
        capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return root / "model"


def test_serves_what_perennial_train_wrote(trained):
    digest = hashlib.sha256((trained / contract.RESULT).read_bytes()).hexdigest()
    server = ServerProcess(trained, "--workers", "1", "--expected-sha256", digest)
    try:
        server.wait_ready()
        frame = load_breast_cancer(as_frame=True).frame.drop(columns="target").head(120)
        expected = load_model(trained / contract.MODEL_SKOPS).predict(frame).tolist()
        v1 = server.post(
            "/v1/models/breast-cancer:predict", {"instances": frame.to_dict("records")}
        )
        assert v1.status_code == 200, v1.text
        assert v1.json()["predictions"] == expected
        inputs = [
            {"name": c, "shape": [len(frame)], "datatype": "FP64", "data": frame[c].tolist()}
            for c in frame.columns
        ]
        v2 = server.post("/v2/models/breast-cancer/infer", {"inputs": inputs})
        assert v2.json()["outputs"][0]["data"] == expected
        samples = server.metrics()
        info = (
            "perennial_model_info",
            frozenset(
                {("format", "onnx" if (trained / contract.MODEL_ONNX).exists() else "skops")}
            ),
        )
        assert samples[info] == 1
        bins = [v for (name, labels), v in samples.items() if name == "perennial_feature_bin_total"
                and ("feature", "mean radius") in labels]  # fmt: skip
        assert sum(bins) == 2 * len(frame) and np.count_nonzero(bins) > 3
    finally:
        assert server.stop() == 0
