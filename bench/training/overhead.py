"""perennial-train overhead vs the bare scikit-learn fit of the same pipeline, side by side.

    .venv/bin/python bench/training/overhead.py [--repeats 3]

"bare" = read the same data, split it the same way, fit the same pipeline (the one
perennial-train builds), predict the test split. "perennial" = the whole in-process run:
read + hash, data checks, split, fit, evaluate, ONNX export + parity check, skops, profile,
result.json. The two alternate, so machine noise hits both; medians are printed. A
subprocess run is timed once more to show the interpreter + import cost a pod pays.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split
from threadpoolctl import threadpool_limits

from perennial_runtime.train.cli import main as perennial_train
from perennial_runtime.train.datasets import load
from perennial_runtime.train.features import Columns, prepare
from perennial_runtime.train.pipelines import build_pipeline


def synthetic(path: Path, rows: int = 50_000, features: int = 20) -> str:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(rows, features))
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(features)])
    frame["label"] = (X[:, 0] + X[:, 1] * X[:, 2] + rng.normal(size=rows) > 0).astype(int)
    frame.to_csv(path, index=False)
    return f"file://{path}"


def bare(uri: str, target: str, algorithm: str, params: dict[str, Any]) -> float:
    started = time.perf_counter()
    frame = load(uri, "auto", Path("/")).frame
    features = tuple(c for c in frame.columns if c != target)
    columns = Columns(numeric=features)
    X, y = prepare(frame, columns), frame[target]
    X_train, X_test, y_train, _ = train_test_split(X, y, test_size=0.2, random_state=42, stratify=y)
    model = build_pipeline("classification", algorithm, params, columns).fit(X_train, y_train)
    model.predict_proba(X_test)
    return time.perf_counter() - started


def perennial(tmp: Path, spec: dict[str, Any]) -> tuple[float, dict[str, float]]:
    job = tmp / "job.json"
    job.write_text(json.dumps({"kind": "TrainingJob", "spec": spec}))
    args = ["-f", str(job), "--output", str(tmp / "out"), "--termination-log", str(tmp / "t")]
    started = time.perf_counter()
    with open(os.devnull, "w") as sink:
        stdout, sys.stdout = sys.stdout, sink
        try:
            code = perennial_train(args)
        finally:
            sys.stdout = stdout
    seconds = time.perf_counter() - started
    assert code == 0, (tmp / "t").read_text()
    return seconds, json.loads((tmp / "out" / "result.json").read_text())["timings"]


def subprocess_seconds(tmp: Path) -> float:
    script = Path(sys.executable).parent / "perennial-train"
    started = time.perf_counter()
    subprocess.run(
        [
            str(script),
            "-f",
            str(tmp / "job.json"),
            "--output",
            str(tmp / "sub"),
            "--termination-log",
            str(tmp / "t2"),
        ],
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    with tempfile.TemporaryDirectory() as name, threadpool_limits(1):
        tmp = Path(name)
        cases = [
            ("breast_cancer", "builtin://breast_cancer", "target", "random_forest", {}),
            ("digits", "builtin://digits", "target", "logistic_regression", {}),
            ("synthetic 50k x 20", synthetic(tmp / "s.csv"), "label", "logistic_regression", {}),
            (
                "synthetic 50k x 20",
                f"file://{tmp}/s.csv",
                "label",
                "random_forest",
                {"n_estimators": 50},
            ),
        ]
        print(
            f"{'dataset':20} {'algorithm':20} {'bare s':>8} {'perennial s':>12} {'ratio':>6} "
            f"{'subprocess s':>13}  perennial stages (last run)"
        )
        for label, uri, target, algorithm, params in cases:
            spec = {
                "model": "m",
                "task": "classification",
                "algorithm": algorithm,
                "hyperparameters": params,
                "dataset": {"uri": uri, "target": target},
            }
            bares, ours, stages = [], [], {}
            for _ in range(args.repeats):
                bares.append(bare(uri, target, algorithm, params))
                seconds, stages = perennial(tmp, spec)
                ours.append(seconds)
            b, p = statistics.median(bares), statistics.median(ours)
            sub = subprocess_seconds(tmp)
            print(
                f"{label:20} {algorithm:20} {b:8.2f} {p:12.2f} {p / b:6.2f} {sub:13.2f}  "
                f"{json.dumps(stages)}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
