"""AutoML in steps (plan → trial × N → finish): same model as one pod, resumable."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from threadpoolctl import threadpool_limits

from perennial_runtime.train import automl, staged
from perennial_runtime.train.command import Options
from perennial_runtime.train.progress import Progress
from perennial_runtime.train.spec import TrainingJob, parse_manifest
from perennial_runtime.train.worker import Evaluator
from support.training import manifest, run_job, train_direct

pytestmark = pytest.mark.unit

# Two configurations per family (defaults + one random): the same fixed candidates for both
# paths, all of which fit in the budget, so the searches can be compared.
PER_FAMILY = 2


@pytest.fixture(autouse=True)
def _small_search(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setattr(automl, "CONFIGS_PER_FAMILY", PER_FAMILY)


@pytest.fixture
def evaluator() -> Iterator[Evaluator]:
    # One worker process for every in-process trial (a pod would start its own).
    with threadpool_limits(limits=1), Evaluator(1) as worker:
        yield worker


def _job(spec: dict[str, Any]) -> TrainingJob:
    return parse_manifest(manifest(spec))


def _trials(
    job: TrainingJob, options: Options, evaluator: Evaluator, indexes: range | list[int]
) -> list[dict[str, Any]]:
    return [staged.trial(job, options, i, Progress(), evaluator=evaluator) for i in indexes]


def _search_in_steps(
    job: TrainingJob, options: Options, evaluator: Evaluator
) -> tuple[dict[str, Any], int]:
    """plan, every rung's trials index by index, finish; returns (message, fits)."""
    planned = staged.plan(job, options, Progress())
    count, fits, rung = planned["candidates"], 0, planned["rung"]
    while True:
        fits += sum(t["fitted"] for t in _trials(job, options, evaluator, range(count)))
        with threadpool_limits(limits=1):
            message = staged.finish(job, options, Progress(), rung=rung)
        if message.get("outcome") != "NextRung":
            return message, fits
        count, rung = message["candidates"], message["rung"]


BREAST_CANCER = {
    "model": "bc",
    "task": "classification",
    "automl": {"timeBudgetSeconds": 600, "cvFolds": 3},
    "dataset": {"uri": "builtin://breast_cancer"},
}


def test_steps_give_a_model_of_the_single_pods_quality_on_the_same_candidates(
    tmp_path: Path, evaluator: Evaluator
) -> None:
    single = train_direct(tmp_path / "single", BREAST_CANCER)
    job = _job(BREAST_CANCER)
    options = Options(output=tmp_path / "steps" / "model", pvc_root=tmp_path / "pvc")
    message, fits = _search_in_steps(job, options, evaluator)

    pool = automl.candidates("classification", job.dataset.seed)
    assert fits == len(pool)  # one rung on 455 rows: every candidate once
    one = json.loads((tmp_path / "single" / "model" / "result.json").read_text())
    steps = json.loads((options.output / "result.json").read_text())
    assert message["metrics"]["roc_auc"] == pytest.approx(
        single.message["metrics"]["roc_auc"], abs=0.005
    )
    # The same kind of artifact: the same result.json keys, model files and leaderboard.
    assert set(steps) == set(one)
    assert set(steps["artifacts"]) == set(one["artifacts"])
    key = [(e["algorithm"], json.dumps(e["params"], sort_keys=True)) for e in one["leaderboard"]]
    assert [(e["algorithm"], json.dumps(e["params"], sort_keys=True)) for e in
            steps["leaderboard"]] == key  # fmt: skip
    assert steps["automl"]["evaluated"] == one["automl"]["evaluated"]
    # finish is idempotent: a second run answers from the state and fits nothing.
    assert staged.finish(job, options, Progress()) == message


def _two_rung_pvc(tmp_path: Path) -> Path:
    """1500 rows, two informative features: 1200 training rows make two rungs (400, 1200)."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(1500, 4))
    y = (X[:, 0] + 0.5 * X[:, 1] + rng.normal(scale=0.7, size=1500) > 0).astype(int)
    frame = pd.DataFrame(X, columns=["a", "b", "c", "d"]).assign(label=y)
    root = tmp_path / "pvc"
    (root / "data").mkdir(parents=True)
    frame.to_csv(root / "data" / "two.csv", index=False)
    return root


TWO_RUNGS = {
    "model": "two",
    "task": "classification",
    "automl": {"timeBudgetSeconds": 600, "cvFolds": 3},
    "dataset": {"uri": "pvc://data/two.csv", "target": "label"},
}


def test_a_search_resumed_after_a_partial_run_fits_no_candidate_twice(
    tmp_path: Path, evaluator: Evaluator
) -> None:
    root = _two_rung_pvc(tmp_path)
    job = _job(TWO_RUNGS)
    options = Options(output=tmp_path / "model", pvc_root=root)
    first = staged.plan(job, options, Progress())
    assert first["rungs"] == [400, 1200] and first["rung"] == 0
    rung0 = first["candidates"]
    fitted = _trials(job, options, evaluator, [0, 2, 3])  # the pods that ran before a kill
    assert [t["fitted"] for t in fitted] == [True, True, True]

    # Restarted: the plan is kept (same start, so the same budget), every trial re-runs.
    plan_file = (options.output / ".automl" / "plan.json").read_text()
    assert staged.plan(job, options, Progress()) == first
    assert (options.output / ".automl" / "plan.json").read_text() == plan_file
    again = _trials(job, options, evaluator, range(rung0))
    assert sum(t["fitted"] for t in again) == rung0 - 3
    assert [t["index"] for t in again if not t["fitted"]] == [0, 2, 3]

    nxt = staged.finish(job, options, Progress())
    assert nxt["outcome"] == "NextRung" and nxt["rung"] == 1
    assert nxt["candidates"] == -(-rung0 // automl.ETA) and nxt["evaluated"] == rung0
    assert nxt["best"]["rung"] == 0 and nxt["best"]["rows"] == 400
    # Killed again after finish: re-running rung 0's finish answers the same.
    assert staged.finish(job, options, Progress(), rung=0) == nxt
    second = _trials(job, options, evaluator, [1])
    rest = _trials(job, options, evaluator, range(nxt["candidates"]))
    assert second[0]["fitted"] and sum(t["fitted"] for t in rest) == nxt["candidates"] - 1

    with threadpool_limits(limits=1):
        message = staged.finish(job, options, Progress())
    result = json.loads((options.output / "result.json").read_text())
    rungs = [e["rung"] for e in result["leaderboard"]]
    assert rungs[: nxt["candidates"]] == [1] * nxt["candidates"]
    assert {e["rows"] for e in result["leaderboard"] if e["rung"] == 1} == {1200}
    assert message["metrics"]["roc_auc"] > 0.85


def test_trial_index_comes_from_the_indexed_job_and_steps_keep_their_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = {**BREAST_CANCER, "automl": {"timeBudgetSeconds": 60, "cvFolds": 3}}
    early = run_job(tmp_path, spec, "--rung", "0", "--index", "0", step="trial")
    assert early.code == 1 and "no AutoML plan" in early.termination["message"]
    planned = run_job(tmp_path, spec, step="plan")
    assert planned.code == 0 and planned.termination["outcome"] == "Planned"
    monkeypatch.setenv("JOB_COMPLETION_INDEX", "1")
    ran = run_job(tmp_path, spec, step="trial")
    assert ran.code == 0 and ran.termination == {
        "outcome": "Trial", "rung": 0, "index": 1, "status": "scored", "fitted": True
    }  # fmt: skip
    record = json.loads((ran.output / ".automl" / "rung-0" / "trial-1.json").read_text())
    second = automl.candidates("classification", _job(spec).dataset.seed)[1]
    assert record["candidate"] == {"algorithm": second.algorithm, "params": second.params}
    assert np.load(ran.output / ".automl" / "rung-0" / "trial-1.npy").shape == (455, 2)
    outside = run_job(tmp_path, spec, "--index", "999", step="trial")
    assert outside.code != 0 and "outside rung 0" in outside.termination["message"]


def test_the_plan_says_which_candidates_can_use_a_gpu_and_indexes_pick_from_a_list(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The operator splits a rung over two Jobs (GPU families' pods get the GPU): each Job's
    # completion index then picks from its own list of the rung's candidates.
    spec = {**BREAST_CANCER, "automl": {"timeBudgetSeconds": 60, "cvFolds": 3}}
    planned = run_job(tmp_path, spec, step="plan")
    pool = automl.candidates("classification", _job(spec).dataset.seed)
    gpu = [i for i, c in enumerate(pool) if c.algorithm == "xgboost"]
    assert gpu and planned.termination["gpuIndexes"] == gpu
    monkeypatch.setenv("JOB_COMPLETION_INDEX", "1")
    listed = f"0,{gpu[0]}"
    ran = run_job(tmp_path, spec, "--indexes", listed, step="trial")
    assert ran.code == 0 and ran.termination["index"] == gpu[0]
    record = json.loads((ran.output / ".automl" / "rung-0" / f"trial-{gpu[0]}.json").read_text())
    assert record["candidate"]["algorithm"] == "xgboost"
    for bad, why in (("0", "outside --indexes"), ("0,x", "comma-separated candidate numbers")):
        refused = run_job(tmp_path, spec, "--indexes", bad, step="trial")
        assert refused.code != 0 and why in refused.termination["message"]


def test_the_budget_counts_from_the_plan_across_pods(tmp_path: Path) -> None:
    spec = {**BREAST_CANCER, "automl": {"timeBudgetSeconds": 1, "cvFolds": 3}}
    assert run_job(tmp_path, spec, step="plan").code == 0
    time.sleep(1.1)  # a pod that starts after the rung's deadline fits nothing
    late = run_job(tmp_path, spec, "--index", "0", step="trial")
    assert late.termination["status"] == "skipped" and not late.termination["fitted"]
    finished = run_job(tmp_path, spec, "--rung", "0", step="finish")
    assert finished.code == 5 and finished.termination["outcome"] == "BudgetTooSmall"
    assert not (finished.output / "result.json").exists()
