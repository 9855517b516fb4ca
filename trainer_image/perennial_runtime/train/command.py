"""The two commands: ``train`` (the whole run) and ``validate`` (data checks only)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from perennial_runtime.train import run, serving_cost
from perennial_runtime.train.baseline import baseline_dir, evaluate_baseline
from perennial_runtime.train.evaluate import evaluate
from perennial_runtime.train.features import Columns, Split, split
from perennial_runtime.train.onnx_export import Export, export
from perennial_runtime.train.profile import build_profile
from perennial_runtime.train.progress import Progress
from perennial_runtime.train.result import compact_success, library_versions
from perennial_runtime.train.signature import build_signature
from perennial_runtime.train.spec import TrainingJob
from perennial_runtime.train.writer import write_model_dir


@dataclass(frozen=True)
class Trained:
    """What a run leaves behind: the termination message, and (for tests) the model."""

    message: dict[str, Any]
    model: Any
    data: Split
    columns: Columns


@dataclass(frozen=True)
class Options:
    output: Path
    pvc_root: Path
    baseline_dir: Path | None = None


def validate(job: TrainingJob, pvc_root: Path, progress: Progress) -> dict[str, Any]:
    checked = run.load_and_check(job, pvc_root, progress)
    progress.stage("validating", "passed")
    return {
        "outcome": "Validated",
        "dataset": _dataset(checked),
        "warnings": [w.as_dict() for w in checked.warnings][:20],
    }


def train(job: TrainingJob, options: Options, progress: Progress) -> Trained:
    """Run every stage and write the model directory."""
    checked = run.load_and_check(job, options.pvc_root, progress)
    data = split(job, checked.frame, checked.columns)
    fitted = run.fit(job, checked, data, progress)
    return evaluate_and_write(job, options, checked, data, fitted, progress)


def evaluate_and_write(
    job: TrainingJob,
    options: Options,
    checked: run.Checked,
    data: Split,
    fitted: run.Fitted,
    progress: Progress,
) -> Trained:
    """Evaluate a fitted model on the held-out split and write the model directory.

    An AutoML ensemble that, once converted (or not), costs more per row than
    automl.servingLatencyBudgetMs gives way to the best single candidate within it.
    """
    progress.stage("exporting", "ONNX, checked against the pipeline on the held-out split")
    exported = export(job.task, fitted.families, fitted.model, checked.columns, data.X_test)
    serving = _serving(job, fitted, exported, checked.columns, data.X_test, progress)
    if not serving["withinBudget"] and fitted.fallback is not None:
        progress.stage("fitting", "the ensemble is over the serving budget: the best single one")
        fitted = fitted.fallback()
        exported = export(job.task, fitted.families, fitted.model, checked.columns, data.X_test)
        serving = _serving(job, fitted, exported, checked.columns, data.X_test, progress)
    progress.stage("evaluating", f"{len(data.X_test)} held-out rows")
    metrics = evaluate(job.task, fitted.model, data.X_test, data.y_test, data.X_train, data.y_train)
    result: dict[str, Any] = {"metrics": metrics}
    result |= _baseline(job, options, checked.frame.loc[data.X_test.index], data)
    progress.stage("writing", str(options.output))
    signature = build_signature(
        job.task, fitted.model, checked.columns, data.X_train, exported.model
    )
    profile = build_profile(
        data.X_train, checked.columns, fitted.model.predict(data.X_train), job.task
    )
    result |= {
        "model": job.model,
        "task": job.task,
        "algorithm": fitted.algorithm,
        "hyperparameters": fitted.params,
        "automl": _automl(job, fitted),
        "leaderboard": fitted.leaderboard,
        "ensemble": fitted.ensemble,
        "dataset": _dataset(checked),
        "split": {"train": len(data.X_train), "test": len(data.X_test)},
        "onnx": exported.report,
        "serving": serving,
        "warnings": [w.as_dict() for w in checked.warnings][:20],
        "libraries": library_versions(),
        "timings": progress.done(),
    }
    written, digest = write_model_dir(
        options.output, fitted.model, exported.model, signature, profile, result
    )
    progress.stage("done", f"result.json sha256 {digest}")
    message = compact_success(written, digest, signature)
    return Trained(message, fitted.model, data, checked.columns)


def _serving(
    job: TrainingJob,
    fitted: run.Fitted,
    exported: Export,
    columns: Columns,
    X_test: Any,
    progress: Progress,
) -> dict[str, Any]:
    """The written model's cost per row, timed in the format the server will load."""
    if exported.model is not None:
        ms, fmt = serving_cost.measure_onnx(exported.model, columns, X_test), "onnx"
    else:
        ms, fmt = serving_cost.measure_sklearn(job.task, fitted.model, X_test), "skops"
    budget = job.automl.serving_latency_budget_ms if job.algorithm == "auto" else 0.0
    within = budget <= 0 or ms <= budget
    if not within:
        progress.stage(
            "writing",
            f"warning: the model costs {ms:.3f} ms per row served from {fmt}, over "
            f"automl.servingLatencyBudgetMs={budget:g} ({exported.report.get('reason', '')})",
        )
    return {"format": fmt, "msPerRow": round(ms, 4), "withinBudget": within}


def _baseline(job: TrainingJob, options: Options, test_rows: Any, data: Any) -> dict[str, Any]:
    directory = baseline_dir(job, options.baseline_dir, options.pvc_root)
    if directory is None:
        return {}
    try:
        return {
            "baselineMetrics": evaluate_baseline(
                job, directory, test_rows, data.y_test, data.X_train
            )
        }
    except Exception as exc:  # a broken baseline must not cost the new model
        return {"baselineError": f"{directory}: {type(exc).__name__}: {exc}"}


def _automl(job: TrainingJob, fitted: run.Fitted) -> dict[str, Any] | None:
    if job.algorithm != "auto":
        return None
    return {
        "metric": fitted.metric,
        "timeBudgetSeconds": job.automl.time_budget_seconds,
        "cvFolds": job.automl.cv_folds,
        "ensembleSize": job.automl.ensemble_size,
        "servingLatencyBudgetMs": job.automl.serving_latency_budget_ms,
        "evaluated": len(fitted.leaderboard),
    }


def _dataset(checked: run.Checked) -> dict[str, Any]:
    return {"uri": checked.loaded.uri, "sha256": checked.loaded.sha256, "rows": checked.loaded.rows}
