"""Helpers for the perennial-train tests: manifests, generated data, in-process runs."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from perennial_runtime.train.cli import main


@dataclass
class Run:
    code: int
    output: Path
    termination: dict[str, Any]


def manifest(spec: dict[str, Any]) -> str:
    return json.dumps(
        {
            "apiVersion": "perennial.dev/v1alpha1",
            "kind": "TrainingJob",
            "metadata": {"name": spec.get("model", "m")},
            "spec": spec,
        }
    )


def validate_process(path: Path, tmp_path: Path) -> tuple[int, dict[str, Any]]:
    """`perennial-train validate -f path` as the pod runs it (the console script, its own
    process): the exit code and the termination message."""
    log = tmp_path / "termination"
    argv = [str(Path(sys.executable).parent / "perennial-train"), "validate", "-f", str(path),
            "--termination-log", str(log)]  # fmt: skip
    code = subprocess.run(argv, capture_output=True, timeout=300, check=False).returncode
    return code, json.loads(log.read_text())


def run_job(
    tmp_path: Path,
    spec: dict[str, Any],
    *extra: str,
    validate: bool = False,
    step: str | None = None,
) -> Run:
    """Run perennial-train (or one of its steps) in this process; the termination message
    is parsed back."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    job = tmp_path / "job.json"
    job.write_text(manifest(spec))
    output = tmp_path / "model"
    term = tmp_path / "termination-log"
    term.unlink(missing_ok=True)
    args = ["validate"] if validate else ([step] if step else [])
    args += ["-f", str(job), "--termination-log", str(term)]
    args += [] if validate else ["--output", str(output)]
    code = main([*args, *extra])
    message = json.loads(term.read_bytes()) if term.exists() else {}
    return Run(code, output, message)


def iris_pvc(tmp_path: Path) -> Path:
    """A PVC root holding data/sets/iris.csv, its label column named `species`."""
    from sklearn.datasets import load_iris

    root = tmp_path / "pvc"
    (root / "data" / "sets").mkdir(parents=True)
    frame = load_iris(as_frame=True).frame.rename(columns={"target": "species"})
    frame.to_csv(root / "data" / "sets" / "iris.csv", index=False)
    return root


def text_frame(rows: int = 240, seed: int = 0) -> pd.DataFrame:
    """Short reviews whose words give away the label, plus shared filler words."""
    rng = np.random.default_rng(seed)
    good = ["great", "excellent", "love", "wonderful", "fast", "reliable"]
    bad = ["awful", "broken", "hate", "slow", "refund", "terrible"]
    filler = ["the", "product", "arrived", "it", "was", "and", "service", "box"]
    texts, labels = [], []
    for i in range(rows):
        label = "positive" if i % 2 else "negative"
        words = list(rng.choice(good if i % 2 else bad, 3)) + list(rng.choice(filler, 5))
        rng.shuffle(words)
        texts.append(" ".join(words))
        labels.append(label)
    return pd.DataFrame({"text": texts, "label": labels})


def ratings_frame(
    users: int = 60, items: int = 40, per_user: int = 15, seed: int = 0
) -> pd.DataFrame:
    """Ratings 1..5 from a rank-2 taste model with noise."""
    rng = np.random.default_rng(seed)
    u_f, i_f = rng.normal(size=(users, 2)), rng.normal(size=(items, 2))
    rows = []
    for u in range(users):
        for i in rng.choice(items, per_user, replace=False):
            score = 3 + u_f[u] @ i_f[i] + rng.normal(0, 0.3)
            rows.append({"user": f"u{u}", "item": f"i{i}", "rating": float(np.clip(score, 1, 5))})
    return pd.DataFrame(rows)


def train_direct(tmp_path: Path, spec: dict[str, Any], baseline: Path | None = None) -> Any:
    """Run the train command in-process and return its Trained (model, split, columns)."""
    from threadpoolctl import threadpool_limits

    from perennial_runtime.train.command import Options, train
    from perennial_runtime.train.progress import Progress
    from perennial_runtime.train.spec import parse_manifest

    job = parse_manifest(manifest(spec))
    options = Options(output=tmp_path / "model", pvc_root=tmp_path / "pvc", baseline_dir=baseline)
    with threadpool_limits(limits=1):
        return train(job, options, Progress())


def anomaly_frame(rows: int = 300, seed: int = 0) -> pd.DataFrame:
    """Two gaussian features; 5% of rows are far away and labelled 1 (anomaly)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows, 2))
    label = np.zeros(rows, dtype=int)
    label[: rows // 20] = 1
    X[label == 1] += rng.choice([-6.0, 6.0], size=(rows // 20, 2))
    return pd.DataFrame({"a": X[:, 0], "b": X[:, 1], "anomaly": label})
