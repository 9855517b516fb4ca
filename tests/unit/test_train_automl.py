"""AutoML: the candidate plan, the rungs, and real searches on tiny budgets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from perennial_runtime.train.algorithms import ALGORITHMS
from perennial_runtime.train.automl import (
    Candidate,
    Entry,
    Search,
    _estimate,
    candidates,
    rung_sizes,
)
from perennial_runtime.train.features import Columns
from perennial_runtime.train.progress import Progress
from perennial_runtime.train.worker import CandidateFailed, Evaluator, ScoreJob
from support.training import train_direct

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def _one_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "1")


def test_candidates_start_with_each_familys_defaults_and_are_distinct() -> None:
    plan = candidates("classification", seed=1)
    families = ALGORITHMS["classification"]
    assert plan[: len(families)] == [Candidate(name, {}) for name in families]
    keys = [(c.algorithm, json.dumps(c.params, sort_keys=True)) for c in plan]
    assert len(keys) == len(set(keys))
    assert candidates("classification", seed=1) == plan


@pytest.mark.parametrize(
    ("rows", "classes", "expected"),
    [
        pytest.param(455, 2, [455], id="small-data-one-rung"),
        pytest.param(1437, 10, [479, 1437], id="digits-two-rungs"),
        pytest.param(100_000, 2, [11112, 33334, 100000], id="capped-at-three-rungs"),
    ],
)
def test_rung_sizes_grow_by_three_up_to_every_row(
    rows: int, classes: int, expected: list[int]
) -> None:
    assert rung_sizes(rows, classes, folds=3) == expected


def test_cost_estimate_scales_the_slowest_fit_of_the_family_by_rows() -> None:
    search = Search("classification", Columns(), "accuracy", 2, 3, 0, Progress())
    search.entries += [
        Entry(Candidate("svm", {}), 0.9, 2.0, 100, 0),
        Entry(Candidate("svm", {"C": 3.0}), 0.9, 1.0, 100, 0),
    ]
    search.stopped.append(("random_forest", 5.0, 100))
    assert _estimate(search, "svm", 300) == pytest.approx(6.0)
    assert _estimate(search, "random_forest", 300) == pytest.approx(15.0)
    assert _estimate(search, "hist_gradient_boosting", 300) is None


def test_search_classification_within_a_small_budget(tmp_path: Path) -> None:
    spec = {
        "model": "bc",
        "task": "classification",
        "automl": {"timeBudgetSeconds": 4, "cvFolds": 3},
        "dataset": {"uri": "builtin://breast_cancer"},
    }
    trained = train_direct(tmp_path, spec)
    result = json.loads((tmp_path / "model" / "result.json").read_text())
    board = result["leaderboard"]
    assert result["automl"]["metric"] == "roc_auc"
    assert 1 <= len(board) <= 10
    if result["algorithm"] == "ensemble":
        members = result["hyperparameters"]["members"]
        summary = result["ensemble"]
        assert len(members) >= 2 and summary["members"] == members
        if summary["method"] == "family-vote":  # each family's best candidate, equal weights
            families = [m["algorithm"] for m in members]
            assert len(set(families)) == len(families) and {m["weight"] for m in members} == {1}
            best = board[0]
            assert (members[0]["algorithm"], members[0]["params"]) == (
                best["algorithm"],
                best["params"],
            )
            assert members[0]["score"] == best["score"]
        else:  # selection: kept only when it scores at least as well out of fold
            assert summary["method"] == "selection"
            assert sum(m["weight"] for m in members) == 25
            assert summary["outOfFoldScore"] >= summary["bestSingleOutOfFoldScore"]
            ranked = [(e["algorithm"], e["params"]) for e in board]
            assert all((m["algorithm"], m["params"]) in ranked for m in members)
    else:
        assert result["ensemble"] is None
        assert result["algorithm"] == board[0]["algorithm"]
        assert result["hyperparameters"] == board[0]["params"]
    assert all(0.5 < e["score"] <= 1 and e["fitSeconds"] > 0 for e in board)
    assert trained.message["metrics"]["roc_auc"] > 0.95
    # Every candidate's serving cost, timed through ONNX; the written model is ONNX too.
    assert all(e["servedAs"] == "onnx" and 0 < e["servingMs"] for e in board)
    assert result["automl"]["servingLatencyBudgetMs"] == 1.0
    assert result["serving"]["format"] == "onnx" and (tmp_path / "model" / "model.onnx").exists()
    assert 0 < result["serving"]["msPerRow"] and result["serving"]["withinBudget"] in (True, False)


def test_search_reports_lower_is_better_metrics_in_their_own_sign(tmp_path: Path) -> None:
    spec = {
        "model": "db",
        "task": "regression",
        "automl": {"timeBudgetSeconds": 3, "metric": "rmse"},
        "dataset": {"uri": "builtin://diabetes"},
    }
    train_direct(tmp_path, spec)
    result = json.loads((tmp_path / "model" / "result.json").read_text())
    scores = [e["score"] for e in result["leaderboard"] if e["rung"] == 0]
    assert all(s > 0 for s in scores)
    assert scores == sorted(scores)  # best (lowest rmse) first


def test_clustering_search_picks_a_cluster_count_by_silhouette(tmp_path: Path) -> None:
    spec = {
        "model": "iris-k",
        "task": "clustering",
        "automl": {"timeBudgetSeconds": 10},
        "dataset": {"uri": "builtin://iris"},
    }
    trained = train_direct(tmp_path, spec)
    assert trained.message["algorithm"] == "kmeans"
    assert trained.message["metrics"]["silhouette"] > 0.3


def test_worker_kills_a_candidate_that_outlives_its_time_and_recovers() -> None:
    from sklearn.datasets import load_digits

    data = load_digits(as_frame=True)
    columns = Columns(numeric=tuple(data.data.columns))
    slow = ScoreJob(
        "classification", "random_forest", {"n_estimators": 2000}, columns, "accuracy", 10, 3, 0
    )
    quick = ScoreJob(
        "classification", "logistic_regression", {"C": 0.1}, columns, "accuracy", 10, 3, 0
    )
    bad = ScoreJob(
        "classification", "logistic_regression", {"C": -1.0}, columns, "accuracy", 10, 3, 0
    )
    X, y = data.data.iloc[:300], data.target.iloc[:300]
    with Evaluator(threads=1) as evaluator:
        assert evaluator.score(slow, X, y, key=0, timeout=0.5) is None
        scored = evaluator.score(quick, X, y, key=0, timeout=120)
        assert scored is not None and 0.8 < scored.score <= 1
        with pytest.raises(CandidateFailed, match="InvalidParameterError"):
            evaluator.score(bad, X, y, key=0, timeout=120)
