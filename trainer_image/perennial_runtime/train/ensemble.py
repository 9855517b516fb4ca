"""How AutoML combines its candidates: a family vote (classification) or ensemble selection.

Family vote: the equal-weight soft vote of the best configuration of each algorithm family.
On small classification data the cross-validation cannot tell the families apart (wine:
142 training rows, several candidates tie at 100% out-of-fold accuracy, yet the random
forest, which scores lower in 3-fold CV, is the better model on most splits); averaging the
families' probabilities does not depend on that ranking, and their errors differ.
bench/training/combiners.py measures it (docs/training.md has the table): over 21 wine
splits the vote is more than 0.005 under the best default model on 3 where selection is on
7; digits and breast_cancer are within 0.001 of selection. For regression an equal vote
lets clearly weaker families drag R² down (diabetes 0.4465 vs 0.4592 over 10 splits), so
regression keeps ensemble selection.

Ensemble selection (Caruana et al., 2004): greedy forward selection with replacement:
SIZE times, add the candidate whose addition gives the best score of the averaged
out-of-fold predictions (ties broken at random, seeded); each candidate's weight is how
often it was picked. As in auto-sklearn the whole path is kept, with no roll-back to the
best step: on small data many candidates tie on the held-out folds, and averaging tied
models lowers the variance the folds cannot measure. The caller keeps the single best
candidate unless the ensemble scores at least as well.

Serving cost: both combiners take each candidate's per-row serving cost and a budget; a
combination costs the sum of its distinct members' costs (one ONNX graph runs them all).
Pure functions: no fitting happens here.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn import metrics as skm

from perennial_runtime.train.algorithms import CLASSIFICATION_TASKS

TASKS = CLASSIFICATION_TASKS | {"regression"}  # tasks whose candidates can be averaged
SIZE = 25  # selection steps (auto-sklearn: 50, AutoGluon: 25)
NBEST = 10  # candidates considered, best first

Predictions = np.ndarray[Any, Any]
PooledScore = Callable[[Predictions], float]


def family_vote(algorithms: Sequence[str]) -> list[int]:
    """Indices of the first (best) candidate of each family in ``algorithms``, best first."""
    seen: set[str] = set()
    chosen = []
    for index, name in enumerate(algorithms):
        if name not in seen:
            seen.add(name)
            chosen.append(index)
    return chosen


def within_cost(indices: Sequence[int], costs: Sequence[float], budget: float) -> list[int]:
    """``indices`` in order, skipping any whose cost would take the total over ``budget``."""
    kept: list[int] = []
    total = 0.0
    for i in indices:
        if total + costs[i] <= budget:
            kept.append(i)
            total += costs[i]
    return kept


@dataclass(frozen=True)
class Selection:
    weights: dict[int, int]  # candidate index → times picked
    score: float  # of the weighted average, higher is better
    best_single: float  # the best one candidate alone, same scoring


def select(
    predictions: Sequence[Predictions],
    score: PooledScore,
    seed: int,
    size: int = SIZE,
    costs: Sequence[float] | None = None,
    budget: float = math.inf,
) -> Selection:
    """Greedy selection with replacement over ``predictions`` (one array per candidate).

    With ``costs``, a candidate not yet picked is only tried while its cost still fits in
    ``budget`` next to the members picked so far (each candidate alone must fit).
    """
    if not predictions:
        raise ValueError("ensemble selection needs at least one candidate")
    costs = costs if costs is not None else [0.0] * len(predictions)
    rng = np.random.default_rng(seed)
    singles = [score(p) for p in predictions]
    total = np.zeros_like(predictions[0])
    weights: dict[int, int] = {}
    current = -np.inf
    for step in range(1, size + 1):
        spent = sum(costs[i] for i in weights)
        allowed = [i for i in range(len(predictions)) if i in weights or spent + costs[i] <= budget]
        trial = {i: score((total + predictions[i]) / step) for i in allowed}
        best = max(trial.values())
        pick = int(rng.choice([i for i, s in trial.items() if s == best]))
        weights[pick] = weights.get(pick, 0) + 1
        total += predictions[pick]
        current = best
    return Selection(weights, float(current), float(max(singles)))


def pooled_score(task_is_classification: bool, metric: str, classes: Any, y: Any) -> PooledScore:
    """``metric`` of out-of-fold predictions against ``y``, higher is better.

    Classification predictions are probabilities with one column per sorted class (the
    label is the most probable class, as in VotingClassifier's soft vote); regression
    predictions are values.
    """
    y = np.asarray(y)
    if not task_is_classification:
        regression: dict[str, Callable[[Predictions], float]] = {
            "r2": lambda p: float(skm.r2_score(y, p)),
            "rmse": lambda p: -float(skm.root_mean_squared_error(y, p)),
            "mae": lambda p: -float(skm.mean_absolute_error(y, p)),
        }
        return regression[metric]
    classes = np.asarray(classes)

    def labels(p: Predictions) -> Any:
        return classes[np.argmax(p, axis=1)]

    classification: dict[str, Callable[[Predictions], float]] = {
        "accuracy": lambda p: float(np.mean(labels(p) == y)),
        "f1_macro": lambda p: float(skm.f1_score(y, labels(p), average="macro")),
        "log_loss": lambda p: -float(skm.log_loss(y, p, labels=classes)),
        "roc_auc": (
            (lambda p: float(skm.roc_auc_score(y, p[:, 1])))
            if len(classes) == 2
            else (lambda p: float(skm.roc_auc_score(y, p, multi_class="ovr", labels=classes)))
        ),
    }
    return classification[metric]
