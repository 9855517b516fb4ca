"""The written model and the serving budget: an AutoML ensemble whose written form costs
more per row than automl.servingLatencyBudgetMs gives way to the best single candidate."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from perennial_runtime.train import command, run
from perennial_runtime.train.features import split
from perennial_runtime.train.pipelines import build_ensemble
from perennial_runtime.train.progress import Progress
from perennial_runtime.train.spec import parse_spec

pytestmark = pytest.mark.unit
MEMBERS = [("logistic_regression", {}, 1), ("random_forest", {"n_estimators": 30}, 1)]


def _write(tmp_path: Path, budget_ms: float) -> dict:
    job = parse_spec(
        {
            "model": "wine",
            "task": "classification",
            "automl": {"servingLatencyBudgetMs": budget_ms},
            "dataset": {"uri": "builtin://wine"},
        }
    )
    progress = Progress(stream=io.StringIO())
    checked = run.load_and_check(job, tmp_path, progress)
    data = split(job, checked.frame, checked.columns)
    model = build_ensemble(job.task, MEMBERS, checked.columns).fit(data.X_train, data.y_train)
    calls = []

    def fallback() -> run.Fitted:
        calls.append(1)
        return run._final(
            job, checked.columns, data, "logistic_regression", {}, "accuracy", [], progress
        )

    families = tuple(name for name, _, _ in MEMBERS)
    fitted = run.Fitted(
        model, "ensemble", {"members": []}, "accuracy", [], families, {"method": "vote"}, fallback
    )
    command.evaluate_and_write(
        job, command.Options(tmp_path / "m", tmp_path), checked, data, fitted, progress
    )
    result = json.loads((tmp_path / "m" / "result.json").read_text())
    return {"result": result, "fallbacks": len(calls)}


def test_within_the_budget_the_ensemble_is_written(tmp_path: Path) -> None:
    written = _write(tmp_path, 0)  # 0: no limit
    assert written["fallbacks"] == 0
    result = written["result"]
    assert result["algorithm"] == "ensemble" and result["serving"]["format"] == "onnx"
    assert result["serving"]["withinBudget"] is True and result["serving"]["msPerRow"] > 0


def test_over_the_budget_the_best_single_candidate_replaces_it(tmp_path: Path) -> None:
    written = _write(tmp_path, 1e-9)  # nothing can be that fast
    assert written["fallbacks"] == 1
    result = written["result"]
    assert result["algorithm"] == "logistic_regression"
    assert result["serving"]["withinBudget"] is False  # still over: said so, not hidden
    assert set(result["metrics"]) >= {"accuracy"}
