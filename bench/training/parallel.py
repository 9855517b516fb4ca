"""The overhead of fanning AutoML out (issue 19): one search as the single pod runs it vs
the same candidates as plan → trial processes (P at a time) → finish.

    .venv/bin/python bench/training/parallel.py [--rows 200000] [--cols 30] [--per-family 1]
                                                 [--parallel 1,2] [--skip svm]
                                                 [--project 8,32] [--pod-start 3]

A generated classification dataset (make_classification, written as CSV); a fixed candidate
list (each family's defaults, plus --per-family - 1 random configurations; the families in
--skip left out: SVC's fit grows with the square of the rows, hours at 200k) and a budget
large enough that no candidate is cut, so both sides fit the same candidates. The single pod
runs in this process (command.train, as perennial-train does); each trial of the fanned-out
search is a real `perennial-train trial` process, as a pod would run it (interpreter
start-up, data loading and split, the worker process, the fit), P at a time; plan and finish
are processes too. No Kubernetes here: scheduling and pod start-up come on top (see the
e2e test's figures in docs/training.md). Prints wall times, the summed fit time of the
trials (the parent's clock around the worker's cross-validation: in a fresh pod that also
holds sending the rung's rows to the worker and the first import of the family's library)
and the rest: each process's start-up and data loading. From the one-at-a-time run it
projects the wall time on 8 and 32 free nodes (`project`: the measured trial processes
placed longest first, each plus --pod-start for scheduling and container start, and the
plan and finish steps as measured): a projection from measured parts, not a measurement.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pandas as pd
from sklearn.datasets import make_classification
from threadpoolctl import threadpool_limits

from perennial_runtime.train import automl, staged
from perennial_runtime.train.algorithms import ALGORITHMS
from perennial_runtime.train.command import Options, train
from perennial_runtime.train.progress import Progress
from perennial_runtime.train.spec import parse_manifest

TRAIN = str(Path(sys.executable).with_name("perennial-train"))


def manifest(uri: str) -> dict[str, Any]:
    return {
        "apiVersion": "perennial.dev/v1alpha1",
        "kind": "TrainingJob",
        "metadata": {"name": "bench"},
        "spec": {
            "model": "bench",
            "task": "classification",
            "automl": {"timeBudgetSeconds": 86400, "cvFolds": 3},
            "dataset": {"uri": uri, "target": "label"},
        },
    }


def step(args: list[str], root: Path) -> tuple[float, dict[str, Any]]:
    """Run one perennial-train step as a process; (wall seconds, termination message)."""
    log = Path(tempfile.mkstemp(dir=root)[1])
    started = time.perf_counter()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [TRAIN, *args, "--termination-log", str(log)]
    subprocess.run(command, check=False, stdout=subprocess.DEVNULL, env=env)
    return time.perf_counter() - started, json.loads(log.read_text() or "{}")


def fanned(spec_file: Path, output: Path, root: Path, parallel: int) -> dict[str, float]:
    base = ["-f", str(spec_file), "--output", str(output), "--pvc-root", str(root)]
    started = time.perf_counter()
    plan_s, planned = step(["plan", *base], root)
    count, rung, fits, slots, finishing = planned["candidates"], planned["rung"], 0.0, 0.0, 0.0
    walls: list[list[float]] = []  # per rung, each trial process's wall time
    while True:
        trial = ["trial", *base, "--rung", str(rung), "--index"]
        with ThreadPoolExecutor(parallel) as pool:
            indexes = [[*trial, str(i)] for i in range(count)]
            runs = list(pool.map(lambda args: step(args, root), indexes))
        slots += sum(wall for wall, _ in runs)
        walls.append([wall for wall, _ in runs])
        for index in range(count):
            record = output / ".automl" / f"rung-{rung}" / f"trial-{index}.json"
            fits += float(json.loads(record.read_text()).get("seconds", 0.0))
        finish_s, message = step(["finish", *base, "--rung", str(rung)], root)
        finishing += finish_s
        if message.get("outcome") != "NextRung":
            break
        count, rung = message["candidates"], message["rung"]
    total = time.perf_counter() - started
    metric = float((message.get("metrics") or {}).get("roc_auc", float("nan")))
    return {"wall": total, "plan": plan_s, "trial_slots": slots, "fits": fits,
            "finish": finishing, "roc_auc": metric, "walls": walls}  # fmt: skip


def project(f: dict[str, Any], nodes: int, pod_start: float) -> float:
    """Wall time of the same search on ``nodes`` free nodes, from one run's measured parts:
    the plan and finish steps as measured (serial), and each rung's trial processes, each
    plus ``pod_start`` (scheduling, container start), placed longest first on the node
    that frees first (how the Job controller's pods fill free slots, at best)."""
    total = f["plan"] + f["finish"] + pod_start * (1 + len(f["walls"]))
    for walls in f["walls"]:
        free = [0.0] * nodes
        for wall in sorted(walls, reverse=True):
            free[free.index(min(free))] += wall + pod_start
        total += max(free)
    return total


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load {one:.2f} {five:.2f} {fifteen:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--cols", type=int, default=30)
    parser.add_argument("--per-family", type=int, default=1)
    parser.add_argument("--parallel", default="1,2")
    parser.add_argument("--skip", default="svm", help="families left out (comma-separated)")
    parser.add_argument("--project", default="8,32", help="node counts to project to")
    parser.add_argument("--pod-start", type=float, default=3.0, help="seconds per pod, projected")
    options = parser.parse_args()
    # The fixed candidate list, in this process: the single pod and the plan read it here
    # (the fanned-out steps then read the plan's list from the claim).
    automl.CONFIGS_PER_FAMILY = options.per_family
    skipped = set(options.skip.split(",")) - {""}
    automl.ALGORITHMS = {
        task: tuple(n for n in names if n not in skipped) for task, names in ALGORITHMS.items()
    }
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        X, y = make_classification(
            options.rows,
            options.cols,
            n_informative=min(10, options.cols // 2),
            n_redundant=0,
            random_state=0,
        )
        frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(options.cols)]).assign(label=y)
        (root / "data").mkdir()
        frame.to_csv(root / "data" / "bench.csv", index=False)
        spec = manifest("pvc://data/bench.csv")
        spec_file = root / "job.json"
        spec_file.write_text(json.dumps(spec))
        job = parse_manifest(json.dumps(spec))
        started = time.perf_counter()
        quiet = Progress(io.StringIO())
        with threadpool_limits(limits=1):
            single = train(job, Options(output=root / "single", pvc_root=root), quiet)
        single_s = time.perf_counter() - started
        listed = len(automl.candidates("classification", job.dataset.seed))
        families = ", ".join(automl.ALGORITHMS["classification"])
        print(f"{options.rows} x {options.cols}, {listed} candidates ({families})", flush=True)
        auc = single.message["metrics"]["roc_auc"]
        print(f"single pod: {single_s:.1f} s wall, roc_auc {auc:.4f}, {load()}", flush=True)
        for parallel in (int(p) for p in options.parallel.split(",")):
            output = root / f"fanned-{parallel}"
            # The plan lists the fixed candidates here (the process plan then keeps it).
            staged.plan(job, Options(output=output, pvc_root=root), quiet)
            f = fanned(spec_file, output, root, parallel)
            rest = f["trial_slots"] - f["fits"]
            print(
                f"parallel {parallel}: {f['wall']:.1f} s wall ({f['wall'] / single_s:.2f}x the "
                f"single pod), roc_auc {f['roc_auc']:.4f}; trial processes {f['trial_slots']:.1f}"
                f" s, of which fitting {f['fits']:.1f} s ({f['fits'] / f['trial_slots']:.0%}), "
                f"start-up and data loading {rest:.1f} s; plan {f['plan']:.1f} s, finish steps "
                f"{f['finish']:.1f} s; {load()}",
                flush=True,
            )
            if parallel != 1:
                continue  # project from the uncontended run: one trial at a time
            rungs = "; ".join(
                f"rung {r}: {len(w)} trials, slowest {max(w):.1f} s, sum {sum(w):.1f} s"
                for r, w in enumerate(f["walls"])
            )
            print(f"  {rungs}")
            for nodes in (int(n) for n in options.project.split(",") if n):
                projected = project(f, nodes, options.pod_start)
                print(
                    f"  projected on {nodes} free nodes (+{options.pod_start:.0f} s per pod): "
                    f"{projected:.1f} s, {single_s / projected:.2f}x the single pod",
                    flush=True,
                )


if __name__ == "__main__":
    main()
