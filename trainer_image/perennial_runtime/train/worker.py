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

import pandas as pd
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import KFold, StratifiedKFold, cross_val_score
from threadpoolctl import threadpool_limits

from perennial_runtime.train.algorithms import CLASSIFICATION_TASKS
from perennial_runtime.train.evaluate import scorer
from perennial_runtime.train.features import Columns
from perennial_runtime.train.pipelines import build_pipeline

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


class CandidateFailed(Exception):
    """The candidate raised (bad parameter combination, numeric trouble) or its child died."""


def cross_validate(job: ScoreJob, X: pd.DataFrame, y: Any) -> float:
    """Mean CV score of one candidate (higher is better); runs inside the child."""
    pipeline = build_pipeline(job.task, job.algorithm, job.params, job.columns)
    if job.task in CLASSIFICATION_TASKS:
        cv: KFold | StratifiedKFold = StratifiedKFold(
            job.folds, shuffle=True, random_state=job.seed
        )
    else:
        cv = KFold(job.folds, shuffle=True, random_state=job.seed)
    with warnings.catch_warnings():
        # A candidate that has not converged is still a valid, just weaker, entry.
        warnings.simplefilter("ignore", ConvergenceWarning)
        scores = cross_val_score(
            pipeline,
            X,
            y,
            cv=cv,
            error_score="raise",
            scoring=scorer(job.task, job.metric, job.n_classes),
        )
    return float(scores.mean())


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
    ) -> float | None:
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
        return float(value)

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
