"""Evaluate the baseline model (the version in production) on this run's test split."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from perennial_runtime import contract
from perennial_runtime.train.datasets import resolve_local
from perennial_runtime.train.evaluate import evaluate
from perennial_runtime.train.features import Columns, prepare
from perennial_runtime.train.persist import load_model
from perennial_runtime.train.spec import TrainingJob


def baseline_dir(job: TrainingJob, flag: Path | None, root: Path) -> Path | None:
    """--baseline-dir wins over spec.baseline.uri; neither means no baseline."""
    if flag is not None:
        return flag
    if job.baseline is not None and job.baseline.uri:
        return resolve_local(job.baseline.uri, root)
    return None


def evaluate_baseline(
    job: TrainingJob,
    directory: Path,
    test_rows: pd.DataFrame,
    y_test: Any,
    X_train: pd.DataFrame | None,
) -> dict[str, float]:
    """Metrics of the baseline on the same rows; raises if it cannot be used."""
    contract.verify_artifacts(directory)
    signature = contract.read_json(directory / contract.SIGNATURE)
    if signature.get("task") != job.task:
        raise ValueError(f"baseline task {signature.get('task')!r} is not {job.task!r}")
    columns = _columns(signature)
    model = load_model(directory / contract.MODEL_SKOPS)
    return evaluate(job.task, model, prepare(test_rows, columns), y_test, X_train, None)


def _columns(signature: dict[str, Any]) -> Columns:
    inputs = signature["inputs"]
    numeric = tuple(i["name"] for i in inputs if i["datatype"] != "BYTES")
    strings = tuple(i["name"] for i in inputs if i["datatype"] == "BYTES")
    if signature["task"] == "text-classification":
        return Columns(text=strings[0])
    return Columns(numeric=numeric, categorical=strings)
