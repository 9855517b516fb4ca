"""Combining candidates: the family vote and the greedy selection on crafted predictions, the
scores they use, the out-of-fold predictions the worker returns, and the ensemble model's safe
round trip."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_wine
from sklearn.metrics import accuracy_score, log_loss, r2_score, roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict, cross_val_score

from perennial_runtime.train import ensemble, persist
from perennial_runtime.train.automl import Candidate, Entry, Search, affordable, choose_ensemble
from perennial_runtime.train.errors import BudgetTooSmall
from perennial_runtime.train.features import Columns
from perennial_runtime.train.onnx_export import export
from perennial_runtime.train.pipelines import build_ensemble, build_pipeline
from perennial_runtime.train.progress import Progress
from perennial_runtime.train.serving_cost import Cost
from perennial_runtime.train.worker import ScoreJob, cross_validate

pytestmark = pytest.mark.unit

Y = np.array([0, 0, 0, 0, 1, 1, 1, 1])


def _proba(positive: list[float]) -> np.ndarray[Any, Any]:
    p = np.asarray(positive)
    return np.column_stack([1 - p, p])


# Each of A and B is wrong on a different pair of rows, confidently enough that the
# average of the two is right everywhere; C is a weaker copy of A.
A = _proba([0.1, 0.1, 0.6, 0.6, 0.9, 0.9, 0.9, 0.9])
B = _proba([0.4, 0.4, 0.1, 0.1, 0.3, 0.3, 0.9, 0.9])
C = _proba([0.6, 0.1, 0.6, 0.6, 0.9, 0.9, 0.9, 0.4])
ACCURACY = ensemble.pooled_score(True, "accuracy", [0, 1], Y)


def test_complementary_candidates_are_averaged_and_beat_either_alone() -> None:
    chosen = ensemble.select([A, B, C], ACCURACY, seed=0)
    assert chosen.best_single == 0.75
    assert chosen.score == 1.0
    assert {0, 1} <= set(chosen.weights)  # C may join once the score cannot improve
    assert sum(chosen.weights.values()) == ensemble.SIZE


def test_selection_is_deterministic_for_a_seed() -> None:
    first = ensemble.select([A, B, C, A.copy()], ACCURACY, seed=7)
    assert ensemble.select([A, B, C, A.copy()], ACCURACY, seed=7) == first


def test_a_dominant_candidate_stands_alone() -> None:
    perfect = _proba([0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0])
    chosen = ensemble.select([perfect, C], ensemble.pooled_score(True, "log_loss", [0, 1], Y), 0)
    assert chosen.weights == {0: ensemble.SIZE}


@pytest.mark.parametrize(
    ("metric", "expected"),
    [
        ("accuracy", lambda p: accuracy_score(Y, p.argmax(axis=1))),
        ("roc_auc", lambda p: roc_auc_score(Y, p[:, 1])),
        ("log_loss", lambda p: -log_loss(Y, p)),
    ],
)
def test_pooled_scores_are_the_metric_higher_is_better(metric: str, expected: Any) -> None:
    assert ensemble.pooled_score(True, metric, [0, 1], Y)(C) == pytest.approx(expected(C))


def test_pooled_regression_score_is_r2_of_the_values() -> None:
    y = np.array([1.0, 2.0, 3.0, 4.0])
    guess = np.array([1.5, 2.0, 2.5, 4.5])
    assert ensemble.pooled_score(False, "r2", None, y)(guess) == pytest.approx(r2_score(y, guess))
    assert ensemble.pooled_score(False, "rmse", None, y)(guess) < 0


def _search(task: str, metric: str, entries: list[Entry], y: Any) -> Search:
    search = Search(task, Columns(), metric, 2 if task != "regression" else 0, 3, 0, Progress())
    search.rung_y, search.entries = y, entries
    return search


def test_classification_votes_the_best_of_each_family_with_equal_weights() -> None:
    # Board order (best first): the second svm and the second forest are not voters.
    D = _proba([0.2, 0.2, 0.2, 0.2, 0.8, 0.8, 0.8, 0.4])
    entries = [
        Entry(Candidate("svm", {"C": 1.0}), 0.75, 1.0, 8, 0, A),
        Entry(Candidate("svm", {"C": 10.0}), 0.75, 1.0, 8, 0, C),
        Entry(Candidate("random_forest", {}), 0.75, 1.0, 8, 0, B),
        Entry(Candidate("random_forest", {"max_depth": 8}), 0.70, 1.0, 8, 0, C),
        Entry(Candidate("logistic_regression", {}), 0.875, 1.0, 8, 0, D),
    ]
    chosen = choose_ensemble(_search("classification", "accuracy", entries, Y), entries)
    assert chosen is not None and chosen.method == "family-vote"
    assert [(c.algorithm, c.params, w) for c, w in chosen.members] == [
        ("svm", {"C": 1.0}, 1),
        ("random_forest", {}, 1),
        ("logistic_regression", {}, 1),
    ]
    assert chosen.member_scores == [0.75, 0.75, 0.875]
    # Out-of-fold score of the plain average of A, B and D, and of the best one alone (D).
    assert chosen.score == accuracy_score(Y, ((A + B + D) / 3).argmax(axis=1))
    assert chosen.best_single == 0.875
    report = chosen.report("accuracy")
    assert report["method"] == "family-vote"
    assert [m["score"] for m in report["members"]] == [0.75, 0.75, 0.875]


def test_classification_vote_is_kept_even_when_out_of_fold_says_otherwise() -> None:
    # A weaker family still votes: on small data the folds cannot rank families (ensemble.py).
    perfect = _proba([0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0])
    entries = [
        Entry(Candidate("svm", {}), 1.0, 1.0, 8, 0, perfect),
        Entry(Candidate("random_forest", {}), 0.70, 1.0, 8, 0, C),
    ]
    chosen = choose_ensemble(_search("classification", "accuracy", entries, Y), entries)
    assert chosen is not None and chosen.method == "family-vote"
    assert chosen.best_single == 1.0 and chosen.score <= 1.0


def test_one_family_left_falls_back_to_selection() -> None:
    entries = [
        Entry(Candidate("svm", {"C": 1.0}), 0.75, 1.0, 8, 0, A),
        Entry(Candidate("svm", {"C": 3.0}), 0.75, 1.0, 8, 0, B),
        Entry(Candidate("svm", {"C": 10.0}), 0.70, 1.0, 8, 0, C),
    ]
    chosen = choose_ensemble(_search("classification", "accuracy", entries, Y), entries)
    assert chosen is not None and chosen.method == "selection"
    assert [c.params for c, _ in chosen.members][:2] == [{"C": 1.0}, {"C": 3.0}]
    report = chosen.report("accuracy")
    assert report["outOfFoldScore"] == 1.0 and report["bestSingleOutOfFoldScore"] == 0.75
    # Without predictions (an earlier rung's entries) there is nothing to combine.
    for entry in entries:
        entry.predictions = None
    assert choose_ensemble(_search("classification", "accuracy", entries, Y), entries) is None


def test_regression_uses_selection_not_an_equal_vote() -> None:
    y = np.array([1.0, 2.0, 3.0, 4.0])
    good, weak = np.array([1.1, 2.0, 2.9, 4.0]), np.array([2.5, 2.5, 2.5, 2.5])
    entries = [
        Entry(Candidate("ridge", {}), 0.99, 1.0, 4, 0, good),
        Entry(Candidate("random_forest", {}), 0.0, 1.0, 4, 0, weak),
    ]
    # Selection only ever picks the ridge: one member, so the single best is kept.
    assert choose_ensemble(_search("regression", "r2", entries, y), entries) is None


def test_ensemble_size_below_two_turns_combining_off() -> None:
    entries = [
        Entry(Candidate("svm", {}), 0.75, 1.0, 8, 0, A),
        Entry(Candidate("random_forest", {}), 0.75, 1.0, 8, 0, B),
    ]
    search = _search("classification", "accuracy", entries, Y)
    search.ensemble_size = 1
    assert choose_ensemble(search, entries) is None


def _wine() -> tuple[pd.DataFrame, pd.Series, Columns]:
    X, y = load_wine(return_X_y=True, as_frame=True)
    return X, y, Columns(numeric=tuple(X.columns))


def test_worker_out_of_fold_predictions_are_scikit_learns() -> None:
    X, y, columns = _wine()
    job = ScoreJob("classification", "logistic_regression", {}, columns, "accuracy", 3, 3, 5)
    scored = cross_validate(ScoreJob(**{**job.__dict__, "predictions": True}), X, y)
    pipeline = build_pipeline("classification", "logistic_regression", {}, columns)
    cv = StratifiedKFold(3, shuffle=True, random_state=5)
    assert scored.score == pytest.approx(cross_val_score(pipeline, X, y, cv=cv).mean())
    assert scored.predictions is not None
    expected = cross_val_predict(pipeline, X, y, cv=cv, method="predict_proba")
    np.testing.assert_allclose(scored.predictions, expected, rtol=0, atol=1e-12)
    assert cross_validate(job, X, y).predictions is None


LINEAR = [("svm", {"C": 10.0}, 3), ("logistic_regression", {}, 2)]
WITH_TREES = [("logistic_regression", {}, 1), ("random_forest", {"n_estimators": 20}, 2)]


@pytest.mark.parametrize(
    ("members", "precision"),
    [
        pytest.param(LINEAR, "double", id="linear"),
        pytest.param(WITH_TREES, "double", id="with-trees"),
    ],
)
def test_ensemble_round_trips_through_skops_and_onnx(
    tmp_path: Path, members: list[tuple[str, dict[str, Any], int]], precision: str
) -> None:
    X, y, columns = _wine()
    model = build_ensemble("classification", members, columns).fit(X.iloc[::2], y.iloc[::2])
    X_check = X.iloc[1::2]
    # The soft vote is the weighted average of the members' probabilities.
    weights = np.array([w for _, _, w in members], dtype=float)
    average = (
        sum(w * m.predict_proba(X_check) for w, m in zip(weights, model.estimators_, strict=True))
        / weights.sum()
    )
    np.testing.assert_allclose(model.predict_proba(X_check), average, rtol=0, atol=1e-12)
    persist.save_model(model, tmp_path / "model.skops")
    loaded = persist.load_model(tmp_path / "model.skops")
    np.testing.assert_array_equal(loaded.predict_proba(X_check), model.predict_proba(X_check))
    exported = export("classification", {m[0] for m in members}, model, columns, X_check)
    assert exported.report["written"], exported.report
    assert exported.report["precision"] == precision


def test_within_cost_keeps_order_and_skips_what_would_pass_the_budget() -> None:
    costs = [0.3, 0.5, 0.4, 0.1]
    assert ensemble.within_cost([0, 1, 2, 3], costs, 1.0) == [0, 1, 3]
    assert ensemble.within_cost([2, 0, 1, 3], costs, 1.0) == [2, 0, 3]
    assert ensemble.within_cost([0, 1], costs, float("inf")) == [0, 1]


def test_selection_never_adds_a_member_that_would_pass_the_budget() -> None:
    free = ensemble.select([A, B, C], ACCURACY, seed=0)
    assert {0, 1} <= set(free.weights)  # without costs A and B are averaged (test above)
    # B alone fits, A alone fits, together they do not: only one of them may be picked.
    capped = ensemble.select([A, B, C], ACCURACY, seed=0, costs=[0.6, 0.6, 0.1], budget=1.0)
    assert not {0, 1} <= set(capped.weights)
    assert sum([0.6, 0.6, 0.1][i] for i in capped.weights) <= 1.0
    assert sum(capped.weights.values()) == ensemble.SIZE


def _costed(entries: list[Entry], costs: list[float]) -> list[Entry]:
    for entry, cost in zip(entries, costs, strict=True):
        entry.serving = Cost(cost, "onnx")
    return entries


def test_the_vote_leaves_out_a_family_that_would_pass_the_serving_budget() -> None:
    D = _proba([0.2, 0.2, 0.2, 0.2, 0.8, 0.8, 0.8, 0.4])
    entries = _costed(
        [
            Entry(Candidate("svm", {}), 0.875, 1.0, 8, 0, D),
            Entry(Candidate("random_forest", {}), 0.75, 1.0, 8, 0, A),
            Entry(Candidate("logistic_regression", {}), 0.75, 1.0, 8, 0, B),
        ],
        [0.2, 0.9, 0.05],
    )
    search = _search("classification", "accuracy", entries, Y)
    chosen = choose_ensemble(search, entries)
    assert chosen is not None
    assert [c.algorithm for c, _ in chosen.members] == ["svm", "logistic_regression"]
    assert chosen.serving_ms == pytest.approx(0.25)
    assert chosen.report("accuracy")["servingMs"] == 0.25
    search.serving_budget_ms = 0  # no limit
    assert len(choose_ensemble(search, entries).members) == 3


def test_candidates_over_the_serving_budget_are_not_chosen_and_none_left_fails() -> None:
    entries = _costed(
        [
            Entry(Candidate("random_forest", {}), 0.9, 1.0, 8, 0, A),
            Entry(Candidate("svm", {}), 0.8, 1.0, 8, 0, B),
        ],
        [3.0, 0.4],
    )
    search = _search("classification", "accuracy", entries, Y)
    assert [e.candidate.algorithm for e in affordable(search, entries)] == ["svm"]
    assert entries[0].report("accuracy")["servingMs"] == 3.0
    search.serving_budget_ms = 0.1
    with pytest.raises(BudgetTooSmall, match=r"servingLatencyBudgetMs=0.1.*svm.*0.400 ms"):
        affordable(search, entries)
