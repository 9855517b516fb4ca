"""How AutoML should combine its candidates: single best vs ensemble selection vs family vote.

    .venv/bin/python bench/training/combiners.py --datasets wine --seeds 0,1,2 [--budget 60]

For each dataset and seed the AutoML search runs once (as perennial-train runs it); then
each way of combining the last rung's candidates is fitted on the training split and
scored on the test split, next to the best of the three default peers of quality.py.
Prints, per dataset, the mean test metric of each combiner and on how many seeds it is
more than 0.005 under the best peer. This is the measurement behind the choice in
perennial_runtime/train/ensemble.py; keep the criterion's seed (42) out of --seeds when
using it to choose.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from perennial_runtime.train import automl, ensemble, run
from perennial_runtime.train.algorithms import CLASSIFICATION_TASKS
from perennial_runtime.train.features import split
from perennial_runtime.train.pipelines import build_ensemble, build_pipeline
from perennial_runtime.train.progress import Progress
from perennial_runtime.train.spec import parse_spec

sys.path.insert(0, str(Path(__file__).parent))
from quality import CASES, MARGIN, peers, score  # noqa: E402

Members = list[tuple[automl.Candidate, int]]


def combiners(s: automl.Search, board: list[automl.Entry]) -> dict[str, Members]:
    last = [e for e in board if e.predictions is not None]
    preds = [e.predictions for e in board if e.predictions is not None]
    classified = s.task in CLASSIFICATION_TASKS
    classes = np.unique(np.asarray(s.rung_y)) if classified else None
    metric = ensemble.pooled_score(classified, s.metric, classes, s.rung_y)
    out: dict[str, Members] = {"single": [(board[0].candidate, 1)]}
    chosen = ensemble.select(preds[: ensemble.NBEST], metric, s.seed, s.ensemble_size)
    keep = len(chosen.weights) >= 2 and chosen.score >= chosen.best_single
    out["selection"] = (
        [(last[i].candidate, w) for i, w in sorted(chosen.weights.items())]
        if keep
        else out["single"]
    )
    voters = ensemble.family_vote([e.candidate.algorithm for e in last])
    out["family-vote"] = [(last[i].candidate, 1) for i in voters]
    shipped = automl.choose_ensemble(s, board)  # what perennial-train does today
    out["shipped"] = shipped.members if shipped else out["single"]
    return out


def one(name: str, seed: int, budget: float) -> dict[str, float]:
    task, metric = CASES[name]
    spec = parse_spec(
        {
            "model": name,
            "task": task,
            "algorithm": "auto",
            "automl": {"timeBudgetSeconds": budget, "metric": metric},
            "dataset": {"uri": f"builtin://{name}", "seed": seed},
        }
    )
    quiet = Progress(stream=open("/dev/null", "w"))  # noqa: SIM115 - lives for the run
    checked = run.load_and_check(spec, Path("/"), quiet)
    data = split(spec, checked.frame, checked.columns)
    y = data.y_train
    n_classes = int(y.nunique()) if task in CLASSIFICATION_TASKS and y is not None else 0
    s = automl.Search(
        task, checked.columns, metric, n_classes, spec.automl.cv_folds, seed, quiet, threads=2
    )
    board = automl.run_search(s, data.X_train, data.y_train, budget)
    row = {"peer": 0.0}
    for model in peers(task).values():
        model.fit(data.X_train, data.y_train)
        row["peer"] = max(row["peer"], score(metric, model, data.X_test, data.y_test))
    for label, members in combiners(s, board).items():
        if len(members) == 1:
            c = members[0][0]
            model = build_pipeline(task, c.algorithm, c.params, checked.columns)
        else:
            parts = [(c.algorithm, c.params, w) for c, w in members]
            model = build_ensemble(task, parts, checked.columns)
        model.fit(data.X_train, data.y_train)
        row[label] = score(metric, model, data.X_test, data.y_test)
    return row


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--budget", type=float, default=60)
    parser.add_argument("--datasets", default="wine,digits,breast_cancer,diabetes")
    parser.add_argument("--seeds", default="0,1,2,3,4,5,6,7,8,9")
    args = parser.parse_args()
    for name in args.datasets.split(","):
        rows = []
        for seed in (int(x) for x in args.seeds.split(",")):
            with threadpool_limits(2):
                rows.append(one(name, seed, args.budget))
            print(name, seed, {k: round(v, 4) for k, v in rows[-1].items()}, flush=True)
        print(f"\n{name}: {len(rows)} seeds; fails = seeds more than {MARGIN} under the best peer")
        for label in rows[0]:
            values = [r[label] for r in rows]
            fails = sum(r[label] < r["peer"] - MARGIN for r in rows)
            print(f"  {label:12} mean {np.mean(values):.4f}  fails {fails}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
