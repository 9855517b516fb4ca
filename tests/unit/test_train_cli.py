"""perennial-train end to end: the console script in a subprocess, baselines, tampering."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from perennial_runtime import contract
from support.training import iris_pvc, run_job

pytestmark = pytest.mark.unit

SPEC = {
    "model": "iris",
    "task": "classification",
    "algorithm": "logistic_regression",
    "dataset": {"uri": "pvc://data/sets/iris.csv", "target": "species"},
    "resources": {"cpu": "1"},
    "computePool": "cpu-small",
    "backoffLimit": 2,
}


@pytest.fixture(autouse=True)
def _one_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "1")


@pytest.fixture
def pvc(tmp_path: Path) -> Path:
    return iris_pvc(tmp_path)


def test_console_script_trains_from_stdin_yaml(tmp_path: Path, pvc: Path) -> None:
    script = Path(sys.executable).parent / "perennial-train"
    manifest = yaml.safe_dump(
        {
            "apiVersion": "perennial.dev/v1alpha1",
            "kind": "TrainingJob",
            "metadata": {"name": "iris"},
            "spec": SPEC,
        }
    )
    term = tmp_path / "termination-log"
    env = {**os.environ, "PERENNIAL_PVC_ROOT": str(pvc), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [str(script), "-f", "-", "--output", str(tmp_path / "out"), "--termination-log", str(term)],
        input=manifest,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    stages = [line.split("] ")[1].split()[0] for line in done.stdout.splitlines()]
    assert stages[:2] == ["loading", "validating"] and "fitting" in stages
    assert {"evaluating", "writing", "done"} <= set(stages)
    message = json.loads(term.read_bytes())
    assert len(term.read_bytes()) <= contract.TERMINATION_MESSAGE_MAX_BYTES
    assert message["outcome"] == "Succeeded" and message["artifact"]["format"] == "onnx"
    assert message["dataset"]["rows"] == 150
    result = contract.verify_artifacts(tmp_path / "out")
    assert message["artifact"]["sha256"] == contract.sha256_file(tmp_path / "out" / "result.json")
    assert result["dataset"]["sha256"] == contract.sha256_file(pvc / "data/sets/iris.csv")


def test_tampered_artifact_is_detected(tmp_path: Path, pvc: Path) -> None:
    run = run_job(tmp_path, SPEC, "--pvc-root", str(pvc))
    assert run.code == 0
    with (run.output / contract.MODEL_ONNX).open("ab") as handle:
        handle.write(b"\0")
    with pytest.raises(contract.ArtifactMismatchError, match="model.onnx"):
        contract.verify_artifacts(run.output)


def test_baseline_is_evaluated_on_the_same_test_split(tmp_path: Path, pvc: Path) -> None:
    first = run_job(tmp_path / "v1", SPEC, "--pvc-root", str(pvc))
    second = run_job(
        tmp_path / "v2",
        SPEC | {"algorithm": "random_forest"},
        "--pvc-root",
        str(pvc),
        "--baseline-dir",
        str(first.output),
    )
    assert second.code == 0
    # Same data, same seed, same split: the baseline scores exactly what it scored itself.
    assert second.termination["baselineMetrics"] == first.termination["metrics"]


def test_baseline_uri_from_the_spec_and_a_broken_baseline(tmp_path: Path, pvc: Path) -> None:
    first = run_job(pvc / "models" / "v1", SPEC, "--pvc-root", str(pvc))
    spec = SPEC | {"baseline": {"modelVersion": "iris-v1", "uri": "pvc://models/v1/model"}}
    second = run_job(tmp_path / "v2", spec, "--pvc-root", str(pvc))
    assert second.termination["baselineMetrics"] == first.termination["metrics"]
    (first.output / contract.PROFILE).write_text("{}")
    third = run_job(tmp_path / "v3", spec, "--pvc-root", str(pvc))
    assert third.code == 0 and "baselineMetrics" not in json.loads(
        (third.output / "result.json").read_text()
    )
    assert "ArtifactMismatchError" in third.termination["baselineError"]


def test_pvc_uri_may_not_escape_its_claim(tmp_path: Path, pvc: Path) -> None:
    spec = SPEC | {"dataset": {"uri": "pvc://data/../etc/passwd", "target": "x"}}
    run = run_job(tmp_path, spec, "--pvc-root", str(pvc))
    assert run.code == contract.EXIT_DATASET_UNAVAILABLE
    assert "'..'" in run.termination["message"]
