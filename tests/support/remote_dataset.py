"""Train from a remote dataset URI with the real CLI, for the s3:// and gs:// tests."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

import yaml
from sklearn.datasets import load_iris


def iris_csv() -> bytes:
    """The object the tests upload: iris as CSV, 150 rows, label column `target`."""
    csv: str = load_iris(as_frame=True).frame.to_csv(index=False)
    return csv.encode()


def train_from(
    tmp_path: Path, uri: str, env: dict[str, str], hide: Iterable[str] = ()
) -> subprocess.CompletedProcess[str]:
    """`perennial-train` on `uri` in a subprocess with `env` added and `hide` removed."""
    job = {
        "apiVersion": "perennial.dev/v1alpha1",
        "kind": "TrainingJob",
        "metadata": {"name": "iris-remote"},
        "spec": {
            "model": "iris",
            "task": "classification",
            "algorithm": "logistic_regression",
            "dataset": {"uri": uri, "target": "target"},
        },
    }
    (tmp_path / "job.yaml").write_text(yaml.safe_dump(job))
    script = Path(sys.executable).parent / "perennial-train"
    hidden = set(hide)
    ambient = {k: v for k, v in os.environ.items() if k not in hidden}
    return subprocess.run(
        [str(script), "-f", str(tmp_path / "job.yaml"), "--output", str(tmp_path / "model")],
        capture_output=True,
        text=True,
        timeout=300,
        env={**ambient, **env, "OMP_NUM_THREADS": "1"},
    )


def assert_trained_on_iris(done: subprocess.CompletedProcess[str], tmp_path: Path) -> None:
    """The run succeeded and result.json pins the uploaded object's bytes."""
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads((tmp_path / "model" / "result.json").read_text())
    assert result["dataset"]["sha256"] == hashlib.sha256(iris_csv()).hexdigest()
    assert result["dataset"]["rows"] == 150
    assert result["metrics"]["accuracy"] > 0.8


def assert_dataset_unavailable(done: subprocess.CompletedProcess[str], uri: str) -> None:
    from perennial_runtime.train.errors import DatasetUnavailable

    assert done.returncode == DatasetUnavailable.exit_code, done.stderr[-2000:]
    assert f"{uri}: cannot be read" in done.stderr
