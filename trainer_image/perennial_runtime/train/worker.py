"""Cross-validate AutoML candidates in a child process that is killed at the deadline.

scikit-learn fits cannot be interrupted, and one slow candidate (say histogram boosting on
ten classes with oversubscribed OpenMP threads) would otherwise overrun the budget by
minutes. The child is spawned once (not forked: OpenMP is not fork-safe), receives each
rung's data once, and scores candidates one at a time; on a timeout it is killed and a
fresh one is spawned when the next candidate needs it.
"""

from __future__ import annotations

import multiprocessing
import warnings
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.utils import _safe_indexing
from threadpoolctl import threadpool_limits

from perennial_runtime.train import onnx_converters
from perennial_runtime.train.algorithms import CLASSIFICATION_TASKS
from perennial_runtime.train.evaluate import scorer
from perennial_runtime.train.features import Columns
from perennial_runtime.train.pipelines import build_pipeline
from perennial_runtime.train.serving_cost import Cost, measure

STARTUP_TIMEOUT_SECONDS = 300


@dataclass(frozen=True)
class ScoreJob:
    task: str
    algorithm: str
    params: dict[str, Any]
    columns: Columns
    metric: str
    n_classes: int
    folds: int
    seed: int
    # Also return out-of-fold predictions (for ensemble selection, ensemble.py).
    predictions: bool = False
    # Also time one single-row predict of the last fold's model (serving_cost.py).
    serving_cost: bool = False


@dataclass(frozen=True)
class Scored:
    score: float  # mean of the fold scores, higher is better
    # Out-of-fold class probabilities (columns: the sorted classes of ``y``) or predicted
    # values, one row per row of ``y``; None when not asked for or not available.
    predictions: np.ndarray[Any, Any] | None = None
    serving: Cost | None = None


class CandidateFailed(Exception):
    """The candidate raised (bad parameter combination, numeric trouble) or its child died."""


def cross_validate(job: ScoreJob, X: pd.DataFrame, y: Any) -> Scored:
    """CV score of one candidate (and its out-of-fold predictions); runs inside the child."""
    pipeline = build_pipeline(job.task, job.algorithm, job.params, job.columns)
    classified = job.task in CLASSIFICATION_TASKS
    cv: KFold | StratifiedKFold = (
        StratifiedKFold(job.folds, shuffle=True, random_state=job.seed)
        if classified
        else KFold(job.folds, shuffle=True, random_state=job.seed)
    )
    score = scorer(job.task, job.metric, job.n_classes)
    classes = np.unique(np.asarray(y)) if classified else None
    scores = []
    oof: np.ndarray[Any, Any] | None = None
    wanted = job.predictions
    with warnings.catch_warnings():
        # A candidate that has not converged is still a valid, just weaker, entry.
        warnings.simplefilter("ignore", ConvergenceWarning)
        for train, test in cv.split(X, y):
            model = clone(pipeline).fit(_safe_indexing(X, train), _rows(y, train))
            X_test = _safe_indexing(X, test)
            scores.append(float(score(model, X_test, _rows(y, test))))
            if not wanted:
                continue
            part = _predict(model, X_test, classes)
            if part is None:
                wanted, oof = False, None
                continue
            if oof is None:
                oof = np.zeros((len(X), *part.shape[1:]))
            oof[test] = part
        serving = measure(job.task, model, job.columns, X_test) if job.serving_cost else None
    return Scored(float(np.mean(scores)), oof, serving)


def _rows(y: Any, index: Any) -> Any:
    return None if y is None else _safe_indexing(y, index)  # clustering has no target


def _predict(model: Any, X: pd.DataFrame, classes: Any) -> np.ndarray[Any, Any] | None:
    if classes is None:
        return np.asarray(model.predict(X), dtype=float)
    if not hasattr(model, "predict_proba") or not np.array_equal(model.classes_, classes):
        return None  # a fold without some class: its columns would not line up
    return np.asarray(model.predict_proba(X), dtype=float)


class Evaluator:
    """The parent's handle on the child: ``score`` returns None when the time ran out."""

    def __init__(self, threads: int) -> None:
        self._threads = threads
        self._context = multiprocessing.get_context("spawn")
        self._process: Any = None
        self._conn: Connection | None = None
        self._data_key: object = None

    def start(self) -> None:
        if self._process is not None:
            return
        parent, child = self._context.Pipe()
        process = self._context.Process(target=_serve, args=(child, self._threads), daemon=True)
        process.start()
        child.close()
        if not parent.poll(STARTUP_TIMEOUT_SECONDS):
            process.kill()
            raise RuntimeError("the AutoML worker process did not start")
        parent.recv()
        self._process, self._conn = process, parent

    def score(
        self, job: ScoreJob, X: pd.DataFrame, y: Any, key: object, timeout: float
    ) -> Scored | None:
        self.start()
        assert self._conn is not None
        try:
            if key != self._data_key:
                self._conn.send(("data", X, y))
                self._data_key = key
            self._conn.send(("score", job))
            if not self._conn.poll(max(timeout, 0.0)):
                self.stop()
                return None
            kind, value = self._conn.recv()
        except (EOFError, OSError) as exc:
            self.stop()
            raise CandidateFailed(f"the worker process died: {exc}") from exc
        if kind == "error":
            raise CandidateFailed(str(value))
        scored: Scored = value
        return scored

    def stop(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.join()
        if self._conn is not None:
            self._conn.close()
        self._process, self._conn, self._data_key = None, None, None

    def __enter__(self) -> Evaluator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _serve(conn: Connection, threads: int) -> None:
    onnx_converters.register()  # one-time set-up, not any candidate's cost
    with threadpool_limits(limits=threads):
        conn.send(("ready", None))
        X: Any = None
        y: Any = None
        while True:
            try:
                message = conn.recv()
            except EOFError:
                return
            if message[0] == "data":
                X, y = message[1], message[2]
                continue
            try:
                conn.send(("ok", cross_validate(message[1], X, y)))
            except Exception as exc:  # report any candidate failure; the parent skips it
                conn.send(("error", f"{type(exc).__name__}: {exc}"))
