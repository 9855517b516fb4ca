"""The stages of one training run: load, validate, fit, evaluate, write.

gather (load the data) → decide (checks, search) → act (fit, write); every stage logs a
progress line. Failures are raised as TrainError subclasses; cli.py maps them to exit codes.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from sklearn.exceptions import ConvergenceWarning

from perennial_runtime.train import automl, datasets
from perennial_runtime.train.algorithms import CLASSIFICATION_TASKS
from perennial_runtime.train.checks import run_checks
from perennial_runtime.train.errors import DataInvalid, Failure
from perennial_runtime.train.features import Columns, Split, select_columns, target_name
from perennial_runtime.train.pipelines import build_ensemble, build_pipeline
from perennial_runtime.train.progress import Progress
from perennial_runtime.train.spec import TrainingJob
from perennial_runtime.train.threads import thread_limit


@dataclass
class Checked:
    loaded: datasets.Loaded
    columns: Columns
    frame: pd.DataFrame
    warnings: list[Failure] = field(default_factory=list)


@dataclass
class Fitted:
    model: Any
    algorithm: str
    params: dict[str, Any]
    metric: str | None
    leaderboard: list[dict[str, Any]]
    # The algorithms inside the model: one, or an ensemble's members.
    families: tuple[str, ...] = ()
    ensemble: dict[str, Any] | None = None
    # An ensemble's way out when its written form is over the serving budget: the best
    # single candidate within it, fitted on demand.
    fallback: Callable[[], Fitted] | None = None


def load_and_check(job: TrainingJob, root: Path, progress: Progress) -> Checked:
    progress.stage("loading", job.dataset.uri)
    loaded = datasets.load(job.dataset.uri, job.dataset.format, root, job.dataset.max_bytes)
    progress.stage("validating", f"{loaded.rows} rows, {loaded.frame.shape[1]} columns")
    target = target_name(job, loaded)
    failures, found = run_checks(loaded.frame, job, target, tuple(loaded.frame.columns))
    if failures:
        raise data_invalid(failures)
    columns = select_columns(job, loaded)
    frame = loaded.frame
    if target is not None and frame[target].isna().any():
        dropped = int(frame[target].isna().sum())
        found.append(Failure("target_values_missing", target, dropped, "rows dropped"))
        frame = frame[frame[target].notna()]
    for warning in found:
        progress.stage("validating", f"warning: {warning.sentence()}")
    return Checked(loaded, columns, frame, found)


def data_invalid(failures: list[Failure]) -> DataInvalid:
    listed = "; ".join(f.sentence() for f in failures[:5])
    more = f"; and {len(failures) - 5} more" if len(failures) > 5 else ""
    return DataInvalid(f"the data checks failed ({len(failures)}): {listed}{more}", failures)


def fit(job: TrainingJob, checked: Checked, data: Split, progress: Progress) -> Fitted:
    classified = job.task in CLASSIFICATION_TASKS and data.y_train is not None
    n_classes = int(data.y_train.nunique()) if classified and data.y_train is not None else 0
    metric = job.metric(n_classes) if job.task != "anomaly-detection" else None
    if job.algorithm != "auto":
        return _final(
            job, checked.columns, data, job.algorithm, job.hyperparameters, metric, [], progress
        )
    if job.task == "anomaly-detection":
        # Without labels there is nothing to search on: the defaults are the answer.
        return _final(job, checked.columns, data, "isolation_forest", {}, None, [], progress)
    search = new_search(job, checked, data, progress)
    board = automl.run_search(search, data.X_train, data.y_train, job.automl.time_budget_seconds)
    return fit_searched(job, checked, data, search, board, progress)


def new_search(
    job: TrainingJob,
    checked: Checked,
    data: Split,
    progress: Progress,
    clock: Callable[[], float] = time.monotonic,
) -> automl.Search:
    """The search state of an AutoML run (one pod's, or one step's of a fanned-out one)."""
    classified = job.task in CLASSIFICATION_TASKS and data.y_train is not None
    n_classes = int(data.y_train.nunique()) if classified and data.y_train is not None else 0
    return automl.Search(
        job.task,
        checked.columns,
        str(job.metric(n_classes)),
        n_classes,
        job.automl.cv_folds,
        job.dataset.seed,
        progress,
        threads=thread_limit(),
        ensemble_size=job.automl.ensemble_size,
        serving_budget_ms=job.automl.serving_latency_budget_ms,
        clock=clock,
    )


def fit_searched(
    job: TrainingJob,
    checked: Checked,
    data: Split,
    search: automl.Search,
    board: list[automl.Entry],
    progress: Progress,
) -> Fitted:
    """From a finished search's leaderboard to the fitted model (best one or ensemble)."""
    metric = search.metric
    report = [e.report(metric) for e in board[: automl.LEADERBOARD_SIZE]]
    affordable = automl.affordable(search, board)
    best = affordable[0].candidate
    over = len(board) - len(affordable)
    progress.stage(
        "fitting",
        f"best {best.algorithm} {best.params} of {len(board)} evaluated"
        + (f" ({over} over the serving budget)" if over else ""),
    )
    chosen = automl.choose_ensemble(search, affordable)
    if chosen is None:
        return _final(
            job, checked.columns, data, best.algorithm, best.params, metric, report, progress
        )
    described = chosen.report(metric)
    progress.stage(
        "fitting",
        f"ensemble of {len(chosen.members)} ({chosen.method}): out-of-fold {metric} "
        f"{described['outOfFoldScore']} vs {described['bestSingleOutOfFoldScore']} alone",
    )
    members = [(c.algorithm, c.params, w) for c, w in chosen.members]
    model = build_ensemble(job.task, members, checked.columns)
    _fit_logged(model, data, progress, f"final ensemble on {len(data.X_train)} rows")
    return Fitted(
        model,
        "ensemble",
        {"members": described["members"]},
        metric,
        report,
        tuple(sorted({c.algorithm for c, _ in chosen.members})),
        described,
        lambda: _final(
            job, checked.columns, data, best.algorithm, best.params, metric, report, progress
        ),
    )


def _final(
    job: TrainingJob,
    columns: Columns,
    data: Split,
    algorithm: str,
    params: dict[str, Any],
    metric: str | None,
    board: list[dict[str, Any]],
    progress: Progress,
) -> Fitted:
    step = "final" if board else "1/1"
    model = build_pipeline(job.task, algorithm, params, columns)
    _fit_logged(model, data, progress, f"{step} {algorithm} {params} on {len(data.X_train)} rows")
    return Fitted(model, algorithm, params, metric, board, (algorithm,))


def _fit_logged(model: Any, data: Split, progress: Progress, what: str) -> None:
    progress.stage("fitting", what)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        model.fit(data.X_train, data.y_train)
    for warning in caught:
        if issubclass(warning.category, ConvergenceWarning):
            progress.stage("fitting", f"warning: {warning.message}")
        else:
            warnings.warn_explicit(
                warning.message, warning.category, warning.filename, warning.lineno
            )
