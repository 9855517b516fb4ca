"""perennial-train fingerprint: the dataset's sha256 and rows, defined exactly as training
records them in result.json (a RetrainPolicy compares the two)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from perennial_runtime import contract
from perennial_runtime.train.cli import main
from support.training import iris_pvc, manifest, run_job

pytestmark = pytest.mark.unit

SPEC = {
    "model": "iris",
    "task": "classification",
    "algorithm": "logistic_regression",
    "dataset": {"uri": "pvc://data/sets/iris.csv", "target": "species"},
}


@pytest.fixture(autouse=True)
def _one_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "1")


@pytest.fixture
def pvc(tmp_path: Path) -> Path:
    return iris_pvc(tmp_path)


def fingerprint(tmp_path: Path, spec: dict, *extra: str) -> tuple[int, bytes]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    job, term = tmp_path / "job.json", tmp_path / "termination-log"
    job.write_text(manifest(spec))
    term.unlink(missing_ok=True)
    code = main(["fingerprint", "-f", str(job), "--termination-log", str(term), *extra])
    return code, term.read_bytes() if term.exists() else b""


def test_console_script_reports_what_training_records_in_result_json(
    tmp_path: Path, pvc: Path
) -> None:
    script = Path(sys.executable).parent / "perennial-train"
    document = {
        "apiVersion": "perennial.dev/v1alpha1",
        "kind": "TrainingJob",
        "metadata": {"name": "iris"},
        "spec": SPEC,
    }
    term = tmp_path / "termination-log"
    done = subprocess.run(
        [str(script), "fingerprint", "-f", "-", "--termination-log", str(term)],
        input=yaml.safe_dump(document),
        capture_output=True,
        text=True,
        env={**os.environ, "PERENNIAL_PVC_ROOT": str(pvc)},
        timeout=120,
        check=False,
    )
    assert done.returncode == contract.EXIT_OK, done.stderr
    raw = term.read_bytes()
    assert b" " not in raw  # compact JSON, as the other sub-steps write it
    message = json.loads(raw)
    assert message["outcome"] == "Fingerprinted"
    assert message["dataset"]["sha256"] == contract.sha256_file(pvc / "data/sets/iris.csv")
    assert message["dataset"]["rows"] == 150

    trained = run_job(tmp_path / "train", SPEC, "--pvc-root", str(pvc))
    assert trained.code == 0
    recorded = json.loads((trained.output / contract.RESULT).read_text())["dataset"]
    assert message["dataset"] == recorded  # uri, sha256 and rows, the very same
    assert trained.termination["dataset"] == recorded  # what the ModelVersion gets


def test_a_changed_file_changes_the_sha256_and_rows(tmp_path: Path, pvc: Path) -> None:
    code, before = fingerprint(tmp_path / "a", SPEC, "--pvc-root", str(pvc))
    path = pvc / "data/sets/iris.csv"
    path.write_text(path.read_text() + "5.0,3.0,1.5,0.2,0\n")
    code2, after = fingerprint(tmp_path / "b", SPEC, "--pvc-root", str(pvc))
    assert code == code2 == contract.EXIT_OK
    first, second = json.loads(before)["dataset"], json.loads(after)["dataset"]
    assert first["sha256"] != second["sha256"]
    assert (first["rows"], second["rows"]) == (150, 151)
    assert second["sha256"] == contract.sha256_file(path)


def test_builtin_dataset_hash_is_the_one_validate_and_train_record(tmp_path: Path) -> None:
    spec = SPEC | {"dataset": {"uri": "builtin://iris", "target": "target"}}
    code, raw = fingerprint(tmp_path / "f", spec)
    validated = run_job(tmp_path / "v", spec, validate=True)
    assert code == validated.code == contract.EXIT_OK
    assert json.loads(raw)["dataset"] == validated.termination["dataset"]
    assert json.loads(raw)["dataset"]["rows"] == 150


@pytest.mark.parametrize(
    ("change", "content", "code", "outcome", "says"),
    [
        ({"dataset": {"uri": "pvc://data/sets/missing.csv", "target": "y"}}, None,
         contract.EXIT_DATASET_UNAVAILABLE, "DatasetUnavailable", "no such file"),
        ({"dataset": {"uri": "pvc://data/sets/bad.parquet", "target": "y"}}, b"not parquet",
         contract.EXIT_DATASET_UNAVAILABLE, "DatasetUnavailable", "cannot be read as parquet"),
        ({"dataset": {"uri": "ftp://host/x.csv", "target": "y"}}, None,
         contract.EXIT_DATASET_UNAVAILABLE, "DatasetUnavailable", "unsupported scheme 'ftp'"),
        ({"task": "astrology"}, None, contract.EXIT_BAD_SPEC, "BadSpec", "astrology"),
    ],
    ids=["missing-file", "unreadable", "unsupported-scheme", "bad-spec"],
)  # fmt: skip
def test_failures_use_the_trainers_exit_codes_and_message(
    tmp_path: Path, pvc: Path, change: dict, content: bytes | None, code: int, outcome: str,
    says: str,
) -> None:  # fmt: skip
    if content is not None:
        (pvc / "data/sets/bad.parquet").write_bytes(content)
    spec = SPEC | change
    got, raw = fingerprint(tmp_path / "run", spec, "--pvc-root", str(pvc))
    message = json.loads(raw)
    assert (got, message["outcome"]) == (code, outcome)
    assert says in message["message"]
