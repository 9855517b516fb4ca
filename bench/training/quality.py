"""AutoML quality vs the best of three default models, on the same train/test split.

    .venv/bin/python bench/training/quality.py [--budget 60] [--datasets breast_cancer,wine]

For each dataset perennial-train runs `algorithm: auto` with the given budget; the peers
are plain scikit-learn defaults (logistic regression / random forest / SVM for
classification, ridge / random forest / SVR for regression; scaled where they need it) fitted
on the very same training split. Prints a table (AutoML minus best peer, and whether it
is within the 0.005 margin) and each AutoML leaderboard. Timings on shared machines are
noisy; the quality numbers are not (all seeds fixed).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import accuracy_score, r2_score, roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC, SVR
from threadpoolctl import threadpool_limits

from perennial_runtime.train import command, datasets, run
from perennial_runtime.train.features import split
from perennial_runtime.train.progress import Progress
from perennial_runtime.train.spec import parse_spec

CASES = {
    "breast_cancer": ("classification", "roc_auc"),
    "wine": ("classification", "accuracy"),
    "digits": ("classification", "accuracy"),
    "diabetes": ("regression", "r2"),
}
MARGIN = 0.005


def peers(task: str) -> dict[str, Any]:
    if task == "regression":
        return {
            "ridge": make_pipeline(StandardScaler(), Ridge()),
            "random_forest": RandomForestRegressor(random_state=0),
            "svr": make_pipeline(StandardScaler(), SVR()),
        }
    return {
        "logistic_regression": make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000)),
        "random_forest": RandomForestClassifier(random_state=0),
        "svm": make_pipeline(StandardScaler(), SVC()),
    }


def score(metric: str, model: Any, X: Any, y: Any) -> float:
    if metric == "roc_auc":
        scores = (
            model.predict_proba(X)[:, 1]
            if hasattr(model, "predict_proba") and not hasattr(model, "decision_function")
            else model.decision_function(X)
        )
        return float(roc_auc_score(y, scores))
    if metric == "r2":
        return float(r2_score(y, model.predict(X)))
    return float(accuracy_score(y, model.predict(X)))


def bench(
    name: str, budget: int, out: Path, seed: int, folds: int | None, ensemble: int | None
) -> dict[str, Any]:
    task, metric = CASES[name]
    spec = parse_spec(
        {
            "model": name,
            "task": task,
            "algorithm": "auto",
            "automl": {"timeBudgetSeconds": budget, "metric": metric}
            | ({"cvFolds": folds} if folds else {})
            | ({"ensembleSize": ensemble} if ensemble is not None else {}),
            "dataset": {"uri": f"builtin://{name}", "seed": seed},
        }
    )
    quiet = Progress(stream=open("/dev/null", "w"))  # noqa: SIM115 - lives for the run
    checked = run.load_and_check(spec, Path("/"), quiet)
    data = split(spec, checked.frame, checked.columns)
    peer_scores = {}
    for peer, model in peers(task).items():
        model.fit(data.X_train, data.y_train)
        peer_scores[peer] = score(metric, model, data.X_test, data.y_test)
    started = time.perf_counter()
    model_dir = out / f"{name}-{seed}"
    trained = command.train(spec, command.Options(model_dir, datasets.pvc_root(None)), quiet)
    seconds = time.perf_counter() - started
    result = json.loads((model_dir / "result.json").read_text())
    return {
        "dataset": name,
        "seed": seed,
        "metric": metric,
        "automl": trained.message["metrics"][metric],
        "algorithm": result["algorithm"],
        "params": result["hyperparameters"],
        "peers": peer_scores,
        "seconds": seconds,
        "leaderboard": result["leaderboard"],
        "serving": result.get("serving", {}),
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--budget", type=int, default=60)
    parser.add_argument("--datasets", default=",".join(CASES))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seeds", default="42", help="split/CV seeds, comma separated")
    parser.add_argument("--cv-folds", type=int, default=None, help="default: the CRD's")
    parser.add_argument("--ensemble-size", type=int, default=None, help="0: no ensemble")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp, threadpool_limits(args.threads):
        for name in args.datasets.split(","):
            for seed in (int(x) for x in args.seeds.split(",")):
                rows.append(
                    bench(name, args.budget, Path(tmp), seed, args.cv_folds, args.ensemble_size)
                )
    print(f"\nAutoML ({args.budget}s budget) vs best default peer, same split (test metric)")
    print(
        f"{'dataset':14} {'seed':>4} {'metric':9} {'automl':>8} {'best peer':>10} {'peer':20} "
        f"{'delta':>8} {'ok':4} {'wall s':>7}  serving  chosen"
    )
    ok_all = True
    for r in rows:
        peer, best = max(r["peers"].items(), key=lambda kv: kv[1])
        ok = r["automl"] >= best - MARGIN
        ok_all &= ok
        print(
            f"{r['dataset']:14} {r['seed']:4} {r['metric']:9} {r['automl']:8.4f} "
            f"{best:10.4f} {peer:20} "
            f"{r['automl'] - best:+8.4f} {'yes' if ok else 'NO':4} {r['seconds']:7.1f}  "
            f"{r['serving'].get('msPerRow', float('nan')):.3f} ms/row "
            f"{r['serving'].get('format')}  "
            f"{r['algorithm']} {json.dumps(r['params'])}"
        )
    for r in rows:
        print(
            f"\nleaderboard {r['dataset']} seed {r['seed']} "
            f"(CV {r['metric']} on the training split, serving cost per row; "
            f"peers on test: {json.dumps({k: round(v, 4) for k, v in r['peers'].items()})})"
        )
        for e in r["leaderboard"]:
            print(
                f"  rung {e['rung']} rows {e['rows']:5} {e['score']:8.4f} {e['fitSeconds']:7.2f}s"
                f" {e.get('servingMs', float('nan')):7.3f}ms {e.get('servedAs', '-'):5}"
                f"  {e['algorithm']} {json.dumps(e['params'])}"
            )
    deltas: dict[str, list[float]] = {}
    for r in rows:
        deltas.setdefault(r["dataset"], []).append(r["automl"] - max(r["peers"].values()))
    for name, values in deltas.items():
        if len(values) > 1:
            print(f"\n{name}: mean delta over {len(values)} seeds {sum(values) / len(values):+.4f}")
    return 0 if ok_all else 1


if __name__ == "__main__":
    sys.exit(main())
