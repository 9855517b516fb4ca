"""AutoML: successive halving across algorithm families within a time budget.

Rung 0 cross-validates many candidates (each family's defaults first, then random
configurations, families interleaved) on a subsample of the training split; each later
rung keeps the best third on three times as many rows; the last rung uses every row. A
candidate is launched only when its estimated cost still fits in the budget, and runs in a
worker process that is killed if it outlives the rung's deadline (worker.py). Nothing
evaluated at all means the budget was too small.

Every candidate's serving cost (one single-row predict of its last fold's model, timed the
way it would be served: serving_cost.py) is recorded; ``serving_budget_ms`` (the spec's
automl.servingLatencyBudgetMs, 0: no limit) excludes the candidates over it, and the
combinations whose members' costs add up to more.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from perennial_runtime.train import ensemble
from perennial_runtime.train.algorithms import (
    ALGORITHMS,
    CLASSIFICATION_TASKS,
    SEARCH_SPACES,
    available,
)
from perennial_runtime.train.errors import BudgetTooSmall
from perennial_runtime.train.evaluate import natural
from perennial_runtime.train.features import Columns
from perennial_runtime.train.progress import Progress
from perennial_runtime.train.serving_cost import Cost
from perennial_runtime.train.worker import CandidateFailed, Evaluator, ScoreJob

ETA = 3
CONFIGS_PER_FAMILY = 12
MAX_RUNGS = 3
LEADERBOARD_SIZE = 10
# No candidate may use more than this share of its rung's time (but always 5 s), so one
# slow configuration cannot starve the rest of the search.
CANDIDATE_SHARE = 0.25
MIN_CANDIDATE_SECONDS = 5.0


@dataclass(frozen=True)
class Candidate:
    algorithm: str
    params: dict[str, Any]


@dataclass
class Entry:
    candidate: Candidate
    score: float  # higher is better (negated for rmse, mae, log_loss)
    seconds: float
    rows: int
    rung: int
    # Out-of-fold predictions on the rung's rows (worker.Scored), kept for the last rung only.
    predictions: np.ndarray[Any, Any] | None = field(default=None, repr=False, compare=False)
    serving: Cost | None = None

    @property
    def serving_ms(self) -> float:
        return self.serving.ms_per_row if self.serving is not None else 0.0

    def report(self, metric: str) -> dict[str, Any]:
        return {
            "algorithm": self.candidate.algorithm,
            "params": self.candidate.params,
            "score": round(natural(metric, self.score), 6),
            "fitSeconds": round(self.seconds, 3),
            "rows": self.rows,
            "rung": self.rung,
            **(self.serving.report() if self.serving is not None else {}),
        }


@dataclass
class Search:
    task: str
    columns: Columns
    metric: str
    n_classes: int
    folds: int
    seed: int
    progress: Progress
    threads: int = 1
    ensemble_size: int = ensemble.SIZE  # 0 or 1: no ensemble selection
    serving_budget_ms: float = 1.0  # per row; 0: no limit
    clock: Callable[[], float] = time.monotonic
    entries: list[Entry] = field(default_factory=list)
    # (algorithm, seconds, rows) of candidates stopped at their limit: lower bounds of cost.
    stopped: list[tuple[str, float, int]] = field(default_factory=list)
    # The target of the last rung that evaluated anything: what Entry.predictions predict.
    rung_y: Any = None


def candidates(task: str, seed: int) -> list[Candidate]:
    """Every installed family's defaults, then distinct random configurations, families
    interleaved."""
    rng = random.Random(seed)
    per_family = []
    for name in (n for n in ALGORITHMS[task] if available(task, n)):
        space = SEARCH_SPACES[name]
        configs: list[dict[str, Any]] = [{}]
        for _ in range(CONFIGS_PER_FAMILY * 4):
            config = {key: rng.choice(values) for key, values in space.items()}
            if config and config not in configs and len(configs) < CONFIGS_PER_FAMILY:
                configs.append(config)
        per_family.append([Candidate(name, c) for c in configs])
    width = max(len(f) for f in per_family)
    return [f[i] for i in range(width) for f in per_family if i < len(f)]


def rung_sizes(rows: int, n_classes: int, folds: int) -> list[int]:
    smallest = max(300, 10 * max(n_classes, 1) * folds)
    if rows < ETA * smallest:
        return [rows]
    count = min(MAX_RUNGS, 1 + int(math.log(rows / smallest, ETA)))
    return [math.ceil(rows / ETA ** (count - 1 - i)) for i in range(count)]


def run_search(s: Search, X: pd.DataFrame, y: Any, budget: float) -> list[Entry]:
    """Evaluate rung after rung until the budget ends; return the leaderboard, best first.

    The clock starts once the worker process is up (its interpreter start-up is a fixed
    cost, like this process's own imports).
    """
    with Evaluator(s.threads) as evaluator:
        if budget > 0:
            evaluator.start()
        start = s.clock()
        sizes = rung_sizes(len(X), s.n_classes, s.folds)
        pool = candidates(s.task, s.seed)
        for rung, rows in enumerate(sizes):
            deadline = rung_deadline(start, budget, rung, len(sizes))
            cap = candidate_cap(budget, len(sizes))
            Xr, yr = subsample(s, X, y, rows)
            evaluated = []
            for index, candidate in enumerate(pool):
                where = f"{index + 1}/{len(pool)} rung {rung}"
                entry = evaluate(s, evaluator, candidate, Xr, yr, rung, deadline, cap, where)
                evaluated += [entry] if entry is not None else []
            if not evaluated:
                break
            for earlier in s.entries:
                if earlier.rung < rung:
                    earlier.predictions = None
            s.rung_y = yr
            pool = survivors(evaluated)
    return final_board(s, budget, len(X))


def rung_deadline(start: float, budget: float, rung: int, rungs: int) -> float:
    """Each rung may use up to its share of the budget, counted from the search's start."""
    return start + budget * (rung + 1) / rungs


def candidate_cap(budget: float, rungs: int) -> float:
    return max(CANDIDATE_SHARE * budget / rungs, MIN_CANDIDATE_SECONDS)


def survivors(evaluated: list[Entry]) -> list[Candidate]:
    """The next rung's candidates: the best third of this rung's (at least one)."""
    ranked = sorted(evaluated, key=lambda e: e.score, reverse=True)
    return [e.candidate for e in ranked[: max(1, math.ceil(len(ranked) / ETA))]]


def final_board(s: Search, budget: float, rows: int) -> list[Entry]:
    if not s.entries:
        raise BudgetTooSmall(
            f"automl.timeBudgetSeconds={budget:g} ran out before any candidate could be "
            f"cross-validated on {rows} rows; raise the budget or name an algorithm"
        )
    return leaderboard(s.entries)


def leaderboard(entries: list[Entry]) -> list[Entry]:
    """Best first: candidates that reached a later rung (more rows) outrank earlier ones."""
    return sorted(entries, key=lambda e: (e.rung, e.score), reverse=True)


def within_serving_budget(s: Search, cost_ms: float) -> bool:
    return s.serving_budget_ms <= 0 or cost_ms <= s.serving_budget_ms


def affordable(s: Search, board: list[Entry]) -> list[Entry]:
    """The leaderboard without the candidates whose serving cost is over the budget."""
    kept = [e for e in board if within_serving_budget(s, e.serving_ms)]
    if not kept:
        fastest = min(board, key=lambda e: e.serving_ms)
        raise BudgetTooSmall(
            f"no candidate predicts a row within automl.servingLatencyBudgetMs="
            f"{s.serving_budget_ms:g}; the fastest, {fastest.candidate.algorithm} "
            f"{fastest.candidate.params}, took {fastest.serving_ms:.3f} ms; raise the "
            "budget (0 turns it off)"
        )
    return kept


def evaluate(
    s: Search,
    evaluator: Evaluator,
    c: Candidate,
    X: pd.DataFrame,
    y: Any,
    rung: int,
    deadline: float,
    cap: float,
    where: str,
) -> Entry | None:
    estimate = _estimate(s, c.algorithm, len(X))
    now = s.clock()
    limit = min(deadline - now, cap)
    if limit <= 0 or (estimate is not None and estimate > limit):
        return None
    s.progress.stage("fitting", f"{where} {c.algorithm} {c.params} rows={len(X)}")
    job = ScoreJob(
        s.task,
        c.algorithm,
        c.params,
        s.columns,
        s.metric,
        s.n_classes,
        s.folds,
        s.seed,
        predictions=s.task in ensemble.TASKS and s.ensemble_size > 1,
        serving_cost=True,
    )
    try:
        scored = evaluator.score(job, X, y, key=rung, timeout=limit)
    except CandidateFailed as exc:
        s.progress.stage("fitting", f"skipped {c.algorithm} {c.params}: {exc}")
        return None
    if scored is None:
        s.progress.stage("fitting", f"stopped {c.algorithm} {c.params} after {limit:.1f}s")
        s.stopped.append((c.algorithm, limit, len(X)))
        return None
    entry = Entry(
        c, scored.score, s.clock() - now, len(X), rung, scored.predictions, scored.serving
    )
    s.entries.append(entry)
    return entry


def _estimate(s: Search, algorithm: str, rows: int) -> float | None:
    """Seconds a family's next evaluation will probably take, scaled to ``rows``."""
    seen = [e.seconds * rows / e.rows for e in s.entries if e.candidate.algorithm == algorithm]
    seen += [seconds * rows / n for name, seconds, n in s.stopped if name == algorithm]
    return max(seen) if seen else None


def subsample(s: Search, X: pd.DataFrame, y: Any, rows: int) -> tuple[pd.DataFrame, Any]:
    if rows >= len(X):
        return X, y
    stratify = y if s.task in CLASSIFICATION_TASKS else None
    X_part, _, y_part, _ = train_test_split(
        X, y, train_size=rows, random_state=s.seed, stratify=stratify
    )
    return X_part, y_part


@dataclass(frozen=True)
class Ensemble:
    members: list[tuple[Candidate, int]]  # candidate, weight (times picked)
    score: float  # out-of-fold, higher is better
    best_single: float
    method: str  # family-vote | selection
    member_scores: list[float]  # each member's own CV score (it may be outside the top 10)
    serving_ms: float = 0.0  # the members' serving costs added up (one graph runs them all)

    def report(self, metric: str) -> dict[str, Any]:
        return {
            "method": self.method,
            "members": [
                {
                    "algorithm": c.algorithm,
                    "params": c.params,
                    "weight": w,
                    "score": round(natural(metric, score), 6),
                }
                for (c, w), score in zip(self.members, self.member_scores, strict=True)
            ],
            "outOfFoldScore": round(natural(metric, self.score), 6),
            "bestSingleOutOfFoldScore": round(natural(metric, self.best_single), 6),
            "servingMs": round(self.serving_ms, 4),
        }


def choose_ensemble(s: Search, board: list[Entry]) -> Ensemble | None:
    """How to combine the last rung's candidates (ensemble.py); None keeps the best one.

    Classification: the family vote when two or more families reached the last rung.
    Otherwise (regression, or one family left): ensemble selection over the best
    candidates, kept only with two or more distinct members that score at least as well
    out of fold as the best single candidate. Either way the members' serving costs add
    up to no more than the serving budget (a family that would pass it does not vote;
    selection never adds a member that would). ``board``: affordable candidates only.
    """
    last = [e for e in board if e.predictions is not None]
    predictions = [e.predictions for e in board if e.predictions is not None]
    if len(last) < 2 or s.ensemble_size < 2:
        return None
    classified = s.task in CLASSIFICATION_TASKS
    classes = np.unique(np.asarray(s.rung_y)) if classified else None
    score = ensemble.pooled_score(classified, s.metric, classes, s.rung_y)
    best_single = max(score(p) for p in predictions)
    costs = [e.serving_ms for e in last]
    budget = s.serving_budget_ms if s.serving_budget_ms > 0 else math.inf
    voters = ensemble.within_cost(
        ensemble.family_vote([e.candidate.algorithm for e in last]), costs, budget
    )
    if classified and len(voters) >= 2:
        average = np.mean([predictions[i] for i in voters], axis=0)
        members = [(last[i].candidate, 1) for i in voters]
        scores = [last[i].score for i in voters]
        cost = sum(costs[i] for i in voters)
        return Ensemble(members, score(average), best_single, "family-vote", scores, cost)
    top = last[: ensemble.NBEST]
    chosen = ensemble.select(
        predictions[: len(top)], score, s.seed, s.ensemble_size, costs[: len(top)], budget
    )
    if len(chosen.weights) < 2 or chosen.score < chosen.best_single:
        return None
    picked = sorted(chosen.weights.items())
    members = [(top[i].candidate, w) for i, w in picked]
    scores = [top[i].score for i, _ in picked]
    cost = sum(costs[i] for i, _ in picked)
    return Ensemble(members, chosen.score, chosen.best_single, "selection", scores, cost)
