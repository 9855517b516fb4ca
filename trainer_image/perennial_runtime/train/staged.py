"""AutoML as three steps, so one search can fan out over many pods (issue 19).

    plan            data checks, split, rung sizes, rung 0's candidate list
    trial --index I cross-validate candidate I of the current rung (one pod per index)
    finish          rank the rung: write the next rung's candidate list, or fit and write
                    the model and result.json exactly as the single-pod search does

Same code underneath as the single pod (automl.evaluate, automl.survivors, run.fit_searched,
command.evaluate_and_write); only the loop is replaced by files. Every step reloads and
splits the data itself (deterministic from the seed; the plan's dataset sha256 is checked),
so steps may run on any node that mounts the claim. The state lives in ``<output>/.automl``:

    plan.json                       written last by plan: the rungs, the budget's start
    rung-R/candidates.json          rung R's candidates, in order (index = Job index)
    rung-R/trial-I.json (+ .npy)    candidate I's outcome and out-of-fold predictions
    rung-R/finish.json              finish's answer for rung R when it lists rung R+1
    finished.json                   the final termination message (finish is idempotent)

Each file is written to a temporary name and renamed, so a killed pod leaves either the
whole file or none, and re-running a step never fits a candidate whose trial file exists.
The budget holds across pods: deadlines are wall-clock times counted from the plan.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from perennial_runtime import contract
from perennial_runtime.train import automl, run
from perennial_runtime.train.command import Options, evaluate_and_write
from perennial_runtime.train.errors import BadSpec, TrainError
from perennial_runtime.train.features import Split, split
from perennial_runtime.train.progress import Progress
from perennial_runtime.train.serving_cost import Cost
from perennial_runtime.train.spec import TrainingJob
from perennial_runtime.train.worker import Evaluator

STATE_DIR = ".automl"
SCORED, STOPPED, SKIPPED = "scored", "stopped", "skipped"


class StateMissing(TrainError):
    """A step ran before the one it depends on (no plan, no candidate list)."""


@dataclass(frozen=True)
class Plan:
    sizes: list[int]
    started: float  # epoch seconds: every pod's deadlines count from here
    budget: float
    sha256: str


@dataclass
class Prepared:
    checked: run.Checked
    data: Split
    search: automl.Search


def state_dir(output: Path) -> Path:
    return output / STATE_DIR


def plan(job: TrainingJob, options: Options, progress: Progress) -> dict[str, Any]:
    """Check and split the data and list rung 0; a second run keeps the first plan."""
    state = state_dir(options.output)
    prepared = _prepare(job, options, progress, None)
    existing = _find_plan(state)
    if existing is None:
        data = prepared.data
        sizes = automl.rung_sizes(len(data.X_train), prepared.search.n_classes, job.automl.cv_folds)
        pool = automl.candidates(job.task, job.dataset.seed)
        _write_candidates(state, 0, pool)
        existing = Plan(
            sizes, time.time(), float(job.automl.time_budget_seconds), _sha(prepared.checked)
        )
        _write_json(state / "plan.json", asdict(existing))
    rung = current_rung(state)
    progress.stage("planning", f"rungs {existing.sizes}, rung {rung}")
    return {
        "outcome": "Planned",
        "rungs": existing.sizes,
        "rung": rung,
        **_listed(_read_candidates(state, rung)),
    }


def trial(
    job: TrainingJob,
    options: Options,
    index: int,
    progress: Progress,
    rung: int | None = None,
    evaluator: Evaluator | None = None,
) -> dict[str, Any]:
    """Cross-validate candidate ``index`` of ``rung`` (default: the current one) once."""
    state = state_dir(options.output)
    the_plan = _read_plan(state)
    rung = current_rung(state) if rung is None else rung
    pool = _read_candidates(state, rung)
    if not 0 <= index < len(pool):
        raise BadSpec(f"trial index {index} is outside rung {rung}'s {len(pool)} candidates")
    path = _trial_path(state, rung, index)
    message = {"outcome": "Trial", "rung": rung, "index": index}
    if path.exists():
        done = json.loads(path.read_text())
        progress.stage("fitting", f"rung {rung} candidate {index} already {done['status']}")
        return {**message, "status": done["status"], "fitted": False}
    deadline = automl.rung_deadline(the_plan.started, the_plan.budget, rung, len(the_plan.sizes))
    record: dict[str, Any] = {"candidate": _candidate_json(pool[index]), "rung": rung}
    if time.time() >= deadline:  # as the single pod would: no time left, nothing to load
        progress.stage("fitting", f"rung {rung} candidate {index}: the rung's time is up")
        _write_json(path, record | {"status": SKIPPED})
        return {**message, "status": SKIPPED, "fitted": False}
    prepared = _prepare(job, options, progress, the_plan)
    search = prepared.search
    # Earlier rungs' costs let this pod skip a candidate that cannot fit in its time.
    for earlier in range(rung):
        _load_rung(search, state, earlier, predictions=False)
    X, y = automl.subsample(
        search, prepared.data.X_train, prepared.data.y_train, the_plan.sizes[rung]
    )
    cap = automl.candidate_cap(the_plan.budget, len(the_plan.sizes))
    where = f"{index + 1}/{len(pool)} rung {rung}"
    stopped = len(search.stopped)
    own = evaluator is None
    worker = Evaluator(search.threads) if evaluator is None else evaluator
    try:
        entry = automl.evaluate(search, worker, pool[index], X, y, rung, deadline, cap, where)
    finally:
        if own:
            worker.stop()
    if entry is not None:
        record |= _entry_json(entry)
        if entry.predictions is not None:
            _write_array(path.with_suffix(".npy"), entry.predictions)
    elif len(search.stopped) > stopped:
        _, limit, rows = search.stopped[-1]
        record |= {"status": STOPPED, "seconds": limit, "rows": rows}
    else:
        record |= {"status": SKIPPED}
    _write_json(path, record)
    return {**message, "status": record["status"], "fitted": entry is not None}


def finish(
    job: TrainingJob, options: Options, progress: Progress, rung: int | None = None
) -> dict[str, Any]:
    """Rank ``rung`` (default: the current one): list the next one, or fit and write the
    model. Run again, it answers what it answered the first time."""
    state = state_dir(options.output)
    finished = state / "finished.json"
    rung = current_rung(state) if rung is None else rung
    ranked = state / f"rung-{rung}" / "finish.json"
    for answered in (finished, ranked):
        if answered.exists():
            progress.stage("done", f"rung {rung} was already ranked")
            return dict(json.loads(answered.read_text()))
    the_plan = _read_plan(state)
    if rung != current_rung(state):
        raise StateMissing(f"rung {rung} is not the current rung ({current_rung(state)})")
    prepared = _prepare(job, options, progress, the_plan)
    search = prepared.search
    for each in range(rung + 1):
        _load_rung(search, state, each, predictions=False)
    evaluated = [e for e in search.entries if e.rung == rung]
    missing = len(_read_candidates(state, rung)) - len(_trials(state, rung))
    if missing:
        progress.stage("fitting", f"rung {rung}: {missing} candidate(s) left no result")
    best = max(evaluated, key=lambda e: e.score) if evaluated else None
    if evaluated and rung + 1 < len(the_plan.sizes):
        pool = automl.survivors(evaluated)
        _write_candidates(state, rung + 1, pool)
        progress.stage("fitting", f"rung {rung + 1}: {len(pool)} candidates")
        message = {
            "outcome": "NextRung",
            "rung": rung + 1,
            **_listed(pool),
            "evaluated": len(evaluated),
            "best": _best(search.metric, best),
        }
        _write_json(ranked, message)  # after the list: the answer stands for the list
        return message
    last = max((e.rung for e in search.entries), default=None)
    if last is not None:
        # Like the single pod: only the last rung that evaluated anything keeps predictions.
        search.entries = [e for e in search.entries if e.rung != last]
        _load_rung(search, state, last, predictions=True)
        _, search.rung_y = automl.subsample(
            search, prepared.data.X_train, prepared.data.y_train, the_plan.sizes[last]
        )
    board = automl.final_board(search, the_plan.budget, len(prepared.data.X_train))
    fitted = run.fit_searched(job, prepared.checked, prepared.data, search, board, progress)
    trained = evaluate_and_write(job, options, prepared.checked, prepared.data, fitted, progress)
    _write_json(finished, trained.message)
    return trained.message


def current_rung(state: Path) -> int:
    """The latest rung with a candidate list."""
    rungs = [int(p.parent.name.removeprefix("rung-")) for p in state.glob("rung-*/candidates.json")]
    if not rungs:
        raise StateMissing(f"no AutoML plan in {state}: run `perennial-train plan` first")
    return max(rungs)


def _prepare(
    job: TrainingJob, options: Options, progress: Progress, the_plan: Plan | None
) -> Prepared:
    if job.algorithm != "auto" or job.task == "anomaly-detection":
        raise BadSpec(
            "the AutoML steps need spec.algorithm auto and a task with a target to search on"
        )
    checked = run.load_and_check(job, options.pvc_root, progress)
    if the_plan is not None and _sha(checked) != the_plan.sha256:
        raise StateMissing(
            f"the dataset changed since the plan (sha256 {_sha(checked)[:12]}, planned "
            f"{the_plan.sha256[:12]}): start the search again"
        )
    data = split(job, checked.frame, checked.columns)
    # Wall clock, not monotonic: deadlines are compared across pods.
    search = run.new_search(job, checked, data, progress, clock=time.time)
    return Prepared(checked, data, search)


def _sha(checked: run.Checked) -> str:
    return str(checked.loaded.sha256)


def _read_plan(state: Path) -> Plan:
    found = _find_plan(state)
    if found is None:
        raise StateMissing(f"no AutoML plan in {state}: run `perennial-train plan` first")
    return found


def _find_plan(state: Path) -> Plan | None:
    path = state / "plan.json"
    if not path.exists():
        return None
    raw = json.loads(path.read_text())
    sizes = [int(n) for n in raw["sizes"]]
    return Plan(sizes, float(raw["started"]), float(raw["budget"]), str(raw["sha256"]))


def _read_candidates(state: Path, rung: int) -> list[automl.Candidate]:
    path = state / f"rung-{rung}" / "candidates.json"
    if not path.exists():
        raise StateMissing(f"rung {rung} has no candidate list in {state}")
    raw = json.loads(path.read_text())
    return [automl.Candidate(str(c["algorithm"]), dict(c["params"])) for c in raw]


def _write_candidates(state: Path, rung: int, pool: list[automl.Candidate]) -> None:
    path = state / f"rung-{rung}" / "candidates.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_text(path, json.dumps([_candidate_json(c) for c in pool], indent=1) + "\n")


def _trial_path(state: Path, rung: int, index: int) -> Path:
    return state / f"rung-{rung}" / f"trial-{index}.json"


def _trials(state: Path, rung: int) -> dict[int, dict[str, Any]]:
    found = {}
    for path in (state / f"rung-{rung}").glob("trial-*.json"):
        found[int(path.stem.removeprefix("trial-"))] = json.loads(path.read_text())
    return found


def _load_rung(search: automl.Search, state: Path, rung: int, predictions: bool) -> None:
    """Put a rung's trial outcomes back into ``search`` (in index order)."""
    for index, record in sorted(_trials(state, rung).items()):
        candidate = automl.Candidate(
            record["candidate"]["algorithm"], dict(record["candidate"]["params"])
        )
        if record["status"] == STOPPED:
            search.stopped.append((candidate.algorithm, record["seconds"], record["rows"]))
        if record["status"] != SCORED:
            continue
        array = _trial_path(state, rung, index).with_suffix(".npy")
        oof = np.load(array, allow_pickle=False) if predictions and array.exists() else None
        serving = record.get("serving")
        search.entries.append(
            automl.Entry(
                candidate,
                float(record["score"]),
                float(record["seconds"]),
                int(record["rows"]),
                rung,
                oof,
                Cost(float(serving["msPerRow"]), str(serving["format"])) if serving else None,
            )
        )


def _listed(pool: list[automl.Candidate]) -> dict[str, Any]:
    """A rung's list as the operator needs it: how many candidates, and which of them can
    use a GPU (only their pods are given one; contract.GPU_ALGORITHMS)."""
    gpu = [i for i, c in enumerate(pool) if c.algorithm in contract.GPU_ALGORITHMS]
    return {"candidates": len(pool), "gpuIndexes": gpu}


def _candidate_json(c: automl.Candidate) -> dict[str, Any]:
    return {"algorithm": c.algorithm, "params": c.params}


def _entry_json(e: automl.Entry) -> dict[str, Any]:
    serving = None
    if e.serving is not None:
        serving = {"msPerRow": e.serving.ms_per_row, "format": e.serving.format}
    return {"status": SCORED, "score": e.score, "seconds": e.seconds, "rows": e.rows,
            "serving": serving}  # fmt: skip


def _best(metric: str, entry: automl.Entry | None) -> dict[str, Any] | None:
    return None if entry is None else entry.report(metric)


def _write_json(path: Path, document: dict[str, Any]) -> None:
    _write_text(path, json.dumps(document, indent=1, sort_keys=True, default=str) + "\n")


def _write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    partial.write_text(text)
    os.replace(partial, path)


def _write_array(path: Path, array: np.ndarray[Any, Any]) -> None:
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    with partial.open("wb") as stream:
        np.save(stream, array, allow_pickle=False)
    os.replace(partial, path)
