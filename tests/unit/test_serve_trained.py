"""The contract end to end: perennial-train writes a model directory, perennial-serve
verifies it against the ModelVersion digest and answers what the trained model predicts."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from sklearn.datasets import load_breast_cancer

from perennial_runtime import contract
from perennial_runtime.train.persist import load_model
from support.server_process import ServerProcess

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
        bins = [
            v
            for (name, labels), v in samples.items()
            if name == "perennial_feature_bin_total" and ("feature", "mean radius") in labels
        ]
        assert sum(bins) == 2 * len(frame) and np.count_nonzero(bins) > 3
    finally:
        assert server.stop() == 0


def _write_wine_ensemble(root: Path, members: list[tuple[str, dict, int]]) -> Path:
    """A soft vote of ``members`` (algorithm, params, weight) fitted on wine and written by
    the trainer's own writer, as AutoML would."""
    from perennial_runtime.train import command, run
    from perennial_runtime.train.features import split
    from perennial_runtime.train.pipelines import build_ensemble
    from perennial_runtime.train.progress import Progress
    from perennial_runtime.train.spec import parse_spec

    job = parse_spec(
        {"model": "wine", "task": "classification", "dataset": {"uri": "builtin://wine"}}
    )
    progress = Progress(stream=io.StringIO())
    checked = run.load_and_check(job, root, progress)
    data = split(job, checked.frame, checked.columns)
    model = build_ensemble(job.task, members, checked.columns).fit(data.X_train, data.y_train)
    families = tuple(name for name, _, _ in members)
    fitted = run.Fitted(model, "ensemble", {"members": []}, "accuracy", [], families)
    options = command.Options(root / "model", root)
    command.evaluate_and_write(job, options, checked, data, fitted, progress)
    return root / "model"


@pytest.fixture(scope="module")
def ensemble_dir(tmp_path_factory):
    """A vote of every tree family and a linear model: one ONNX graph."""
    members = [
        ("logistic_regression", {}, 2),
        ("random_forest", {"n_estimators": 20}, 3),
        ("hist_gradient_boosting", {"max_iter": 20}, 1),
        ("lightgbm", {"n_estimators": 20}, 1),
    ]
    return _write_wine_ensemble(tmp_path_factory.mktemp("ensemble"), members)


def test_serves_an_ensemble_through_onnx(ensemble_dir):
    digest = hashlib.sha256((ensemble_dir / contract.RESULT).read_bytes()).hexdigest()
    assert (ensemble_dir / contract.MODEL_ONNX).exists()
    server = ServerProcess(ensemble_dir, "--workers", "1", "--expected-sha256", digest)
    try:
        server.wait_ready()
        from sklearn.datasets import load_wine

        frame = load_wine(as_frame=True).frame.drop(columns="target")
        model = load_model(ensemble_dir / contract.MODEL_SKOPS)
        reply = server.post("/v1/models/wine:predict", {"instances": frame.to_dict("records")})
        assert reply.status_code == 200, reply.text
        assert reply.json()["predictions"] == model.predict(frame).tolist()
        info = ("perennial_model_info", frozenset({("format", "onnx")}))
        assert server.metrics()[info] == 1
    finally:
        assert server.stop() == 0


@pytest.fixture(scope="module")
def skops_vote_dir(tmp_path_factory):
    """A family vote, to be served from model.skops (as when its ONNX form fails the
    parity check)."""
    members = [("svm", {}, 1), ("hist_gradient_boosting", {"max_iter": 20}, 1)]
    return _write_wine_ensemble(tmp_path_factory.mktemp("vote"), members)


@pytest.mark.parametrize("proba", [True, False])
def test_a_skops_vote_predicts_what_scikit_learn_predicts(skops_vote_dir, proba):
    # With probabilities asked for, the labels come from them (one pass through the members):
    # they must be exactly what the model's own predict() says.
    from dataclasses import replace

    from sklearn.datasets import load_wine

    from perennial_runtime.serve.model import load_predictor, open_model_dir

    opened = replace(open_model_dir(skops_vote_dir), format="skops")
    predictor = load_predictor(opened)
    assert predictor.plan is not None  # one numpy pass per batch (sklearn_predictor.py)
    frame = load_wine(as_frame=True).frame.drop(columns="target")
    model = load_model(skops_vote_dir / contract.MODEL_SKOPS)
    names = [f.name for f in opened.signature.numeric_features]
    labels, probabilities = predictor.predict(frame[names].to_numpy(np.float64), None, proba)
    assert labels.tolist() == model.predict(frame).tolist()
    if proba:
        assert probabilities is not None
        np.testing.assert_array_equal(probabilities, model.predict_proba(frame))
    else:
        assert probabilities is None
