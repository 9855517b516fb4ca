"""perennial-train: the console script the training pod runs.

perennial-train -f trainingjob.yaml --output DIR [--baseline-dir DIR] [--pvc-root DIR]
                [--termination-log PATH]
perennial-train validate -f trainingjob.yaml [--pvc-root DIR] [--termination-log PATH]
perennial-train fingerprint -f trainingjob.yaml [--pvc-root DIR] [--termination-log PATH]
perennial-train plan -f trainingjob.yaml --output DIR [...]
perennial-train finish -f trainingjob.yaml --output DIR [--rung R] [--baseline-dir DIR] [...]
perennial-train trial -f trainingjob.yaml --output DIR [--index I] [--indexes LIST] [--rung R]

`validate` runs the data checks only; `fingerprint` only reads the dataset and reports its
sha256 and row count (what a RetrainPolicy's newData probe runs). `plan`, `trial` and
`finish` are one AutoML search cut into steps for pods of an Indexed Job (staged.py; trial's
index defaults to $JOB_COMPLETION_INDEX; with `--indexes 2,7,9` that index picks one of the
listed candidates, so a rung can be split over two Jobs, one whose pods get a GPU). All
write one compact JSON object as the termination message and exit with the codes in
perennial_runtime.contract.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from threadpoolctl import threadpool_limits

from perennial_runtime import contract
from perennial_runtime.train import command, staged
from perennial_runtime.train.datasets import pvc_root
from perennial_runtime.train.errors import TrainError
from perennial_runtime.train.fingerprint import fingerprint
from perennial_runtime.train.progress import Progress
from perennial_runtime.train.result import compact_failure, encode
from perennial_runtime.train.spec import TrainingJob, parse_manifest
from perennial_runtime.train.threads import thread_limit

VALIDATE, FINGERPRINT = "validate", "fingerprint"
PLAN, TRIAL, FINISH = "plan", "trial", "finish"
STEPS = {
    VALIDATE: "Check the data only.",
    FINGERPRINT: "Report the dataset's sha256 and row count only.",
    PLAN: "AutoML in steps: check, split, list the first rung's candidates.",
    TRIAL: "AutoML in steps: cross-validate one candidate of the current rung.",
    FINISH: "AutoML in steps: rank the rung; list the next or write the model.",
}
# The steps that write into --output (a model directory or the search's state in it).
WRITING = {None, PLAN, TRIAL, FINISH}


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    step = args[0] if args and args[0] in STEPS else None
    options = _parser(step).parse_args(args[1:] if step else args)
    progress = Progress()
    with threadpool_limits(limits=thread_limit()):
        return _run(step, options, progress)


def _run(step: str | None, options: argparse.Namespace, progress: Progress) -> int:
    try:
        job = _read_job(options.file)
        root = pvc_root(options.pvc_root)
        if step == VALIDATE:
            message = command.validate(job, root, progress)
        elif step == FINGERPRINT:
            message = fingerprint(job, root, progress)
        elif step == PLAN:
            message = staged.plan(job, _train_options(options, root), progress)
        elif step == TRIAL:
            train_options = _train_options(options, root)
            index = _index(options.index, options.indexes)
            message = staged.trial(job, train_options, index, progress, rung=options.rung)
        elif step == FINISH:
            train_options = _train_options(options, root)
            message = staged.finish(job, train_options, progress, rung=options.rung)
        else:
            message = command.train(job, _train_options(options, root), progress).message
    except TrainError as error:
        return _fail(error, options.termination_log)
    except Exception as exc:  # anything else is a crash: the Job may retry it
        traceback.print_exc(file=sys.stderr)
        crash = TrainError(f"perennial-train crashed: {type(exc).__name__}: {exc}")
        return _fail(crash, options.termination_log)
    _write_termination(options.termination_log, message)
    return contract.EXIT_OK


def _parser(step: str | None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="perennial-train" + (f" {step}" if step else ""),
        description=STEPS[step] if step else "Train a TrainingJob.",
        epilog=None if step else _subcommands(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-f", "--file", required=True, help="TrainingJob manifest, '-' = stdin")
    if step in WRITING:
        parser.add_argument("--output", required=True, type=Path, help="model directory")
    if step in (None, FINISH):
        parser.add_argument("--baseline-dir", type=Path, help="the baseline's model directory")
    if step == TRIAL:
        parser.add_argument("--index", type=int, help="candidate (default $JOB_COMPLETION_INDEX)")
        parser.add_argument(
            "--indexes", help="comma-separated candidates: the index picks one of them"
        )
    if step in (TRIAL, FINISH):
        parser.add_argument("--rung", type=int, help="rung (default: the latest listed)")
    parser.add_argument("--pvc-root", help="where pvc://<claim>/ is mounted (default /mnt/pvc)")
    parser.add_argument(
        "--termination-log", type=Path, default=Path(contract.TERMINATION_MESSAGE_PATH)
    )
    return parser


def _subcommands() -> str:
    lines = [f"  perennial-train {name:<11} -f FILE  {text}" for name, text in STEPS.items()]
    exits = ", ".join(
        f"{code} {name}"
        for name, code in (
            ("ok", contract.EXIT_OK), ("crash", contract.EXIT_CRASH),
            ("bad spec", contract.EXIT_BAD_SPEC), ("data invalid", contract.EXIT_DATA_INVALID),
            ("dataset unavailable", contract.EXIT_DATASET_UNAVAILABLE),
            ("budget too small", contract.EXIT_BUDGET_TOO_SMALL),
        )
    )  # fmt: skip
    return "subcommands (instead of training):\n" + "\n".join(lines) + f"\n\nexit codes: {exits}"


def _read_job(path: str) -> TrainingJob:
    from perennial_runtime.train.errors import BadSpec

    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise BadSpec(f"cannot read the TrainingJob manifest {path}: {exc}") from exc
    return parse_manifest(text)


def _train_options(options: argparse.Namespace, root: Path) -> command.Options:
    baseline = getattr(options, "baseline_dir", None)
    return command.Options(output=options.output, pvc_root=root, baseline_dir=baseline)


def _index(given: int | None, listed: str | None = None) -> int:
    """--index, else the Indexed Job's JOB_COMPLETION_INDEX; with --indexes, the candidate
    that index points at in the list."""
    from perennial_runtime.train.errors import BadSpec

    if given is None:
        raw = os.environ.get("JOB_COMPLETION_INDEX", "")
        if not raw.isdigit():
            raise BadSpec("perennial-train trial needs --index or JOB_COMPLETION_INDEX")
        given = int(raw)
    if listed is None:
        return given
    parts = [p.strip() for p in listed.split(",")]
    if not all(p.isdigit() for p in parts):
        raise BadSpec(f"--indexes must be comma-separated candidate numbers, not {listed[:64]!r}")
    if not 0 <= given < len(parts):
        raise BadSpec(f"index {given} is outside --indexes, which lists {len(parts)}")
    return int(parts[given])


def _fail(error: TrainError, termination_log: Path) -> int:
    sys.stdout.flush()
    print(f"perennial-train: {error.outcome}: {error.message}", file=sys.stderr)
    _write_termination(termination_log, compact_failure(error))
    return error.exit_code


def _write_termination(path: Path, message: dict[str, Any]) -> None:
    """Best effort: the kubelet's file exists in a pod; on a laptop its folder may not."""
    if not path.parent.is_dir():
        return
    try:
        path.write_bytes(encode(message))
    except OSError as exc:
        print(f"perennial-train: cannot write {path}: {exc}", file=sys.stderr)
