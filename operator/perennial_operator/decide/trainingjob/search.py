"""The next step of an AutoML search fanned out over pods (spec.automl.parallelism > 1).

The search is a chain of Jobs, each named after its step so that what exists is the state:

    plan → rung-0 (Indexed, one pod per candidate) → finish-0 → rung-1 → finish-1 → ...

A finish Job's termination message says either "NextRung" (with the next rung's candidate
count) or carries the training result. When the TrainingJob asks for a GPU, a rung is split
by family (the plan's and finish's ``gpuIndexes``): ``rung-R`` runs the candidates that
cannot use one, without it, and ``rung-R-gpu`` the others, with it, sharing the
parallelism; the rung is finished when both are. Pure: the caller lists the TrainingJob's step Jobs
(and their pods' termination messages); this decides what to create or report. After an
operator restart the same Jobs give the same answer, and a step whose Job exists is never
created twice (the trainer's own state on the claim makes each trial run at most once).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from perennial_operator.api.names import STEP_FINISH, STEP_PART_GPU, STEP_PLAN, STEP_RUNG
from perennial_operator.decide.trainingjob.status import TERMINAL, Decision

PLAN, RUNG, FINISH, GPU = STEP_PLAN, STEP_RUNG, STEP_FINISH, STEP_PART_GPU


@dataclass(frozen=True)
class Step:
    """One step Job as observed: which step, and how it ended (if it has)."""

    kind: str  # plan | rung | finish
    rung: int  # 0 for the plan
    complete: bool = False
    failed: bool = False
    failure: str = ""  # the Failed condition's reason: message, for a step that failed
    message: dict[str, Any] | None = None  # the succeeded pod's termination message
    done: int = 0  # rung Jobs: indexes finished (succeeded + failed)
    total: int = 0  # rung Jobs: completions
    part: str = ""  # rung Jobs: GPU for the rung's candidates that use the GPU

    @property
    def finished(self) -> bool:
        return self.complete or self.failed


@dataclass(frozen=True)
class Create:
    """A step Job to create. Rung Jobs: ``completions`` indexes, ``parallelism`` at a time;
    ``indexes``: the rung's candidates this Job runs, in index order (None: all of them)."""

    kind: str
    rung: int
    completions: int = 0
    parallelism: int = 1
    part: str = ""
    indexes: tuple[int, ...] | None = None


@dataclass(frozen=True)
class Next:
    """What to do now. ``create``: the step Jobs to create; ``result``:
    the finished search's training result (register it as the single pod's); ``failed``:
    why the search failed; none of these: wait for the running step."""

    rung: int
    candidates: int = 0  # of the current rung (0 before the plan has run)
    done: int = 0
    create: tuple[Create, ...] = ()
    result: dict[str, Any] | None = None
    failed: str | None = None
    best: dict[str, Any] | None = None  # the best candidate of the last ranked rung
    step: tuple[str, int] = (PLAN, 0)  # (kind, rung) of the step Job that speaks for it now


def step_names(rung: int) -> tuple[str, str]:
    """The name suffixes of a rung's Indexed Job and its finish Job."""
    return f"{RUNG}-{rung}", f"{FINISH}-{rung}"


def rung_jobs(
    rung: int, candidates: int, gpu_indexes: list[int] | None, parallelism: int, gpu: bool
) -> list[Create]:
    """The Indexed Job(s) of a rung. Without a GPU asked for: one. With one: the families
    that use it (``gpu_indexes``) in ``rung-R-gpu``, the rest in ``rung-R`` (no GPU), the
    parallelism shared in proportion (at least one pod each); a runtime that does not say
    which (no ``gpuIndexes``) gets it for all, as before the split."""
    whole = Create(RUNG, rung, candidates, min(parallelism, max(candidates, 1)))
    if not gpu:
        return [whole]
    on_gpu = sorted({i for i in gpu_indexes or [] if 0 <= i < candidates})
    if gpu_indexes is None or len(on_gpu) == candidates:
        return [replace(whole, part=GPU)]
    if not on_gpu:
        return [whole]
    on_cpu = [i for i in range(candidates) if i not in set(on_gpu)]
    share = max(1, min(len(on_gpu), parallelism - 1, round(parallelism * len(on_gpu) / candidates)))
    rest = max(1, min(len(on_cpu), parallelism - share))
    return [
        Create(RUNG, rung, len(on_cpu), rest, "", tuple(on_cpu)),
        Create(RUNG, rung, len(on_gpu), share, GPU, tuple(on_gpu)),
    ]


def next_step(steps: list[Step], parallelism: int = 1, gpu: bool = False) -> Next:
    """Walk the chain from the plan; the first link that is missing or unfinished decides.
    ``Next.step`` is the step that speaks for the search now (created, running or last).
    ``parallelism``: spec.automl.parallelism; ``gpu``: the TrainingJob asks for a GPU."""
    by = {(s.kind, s.rung, s.part): s for s in steps}
    plan = by.get((PLAN, 0, ""))
    at_plan = (PLAN, 0)
    if plan is None:
        return Next(0, create=(Create(PLAN, 0),), step=at_plan)
    if not plan.finished:
        return Next(0, step=at_plan)
    if plan.failed or plan.message is None:
        return Next(0, failed=_why(plan, "the plan step"), step=at_plan)
    listed, rung, best = plan.message, 0, None
    while True:
        candidates, at_rung = int(listed.get("candidates") or 0), (RUNG, rung)
        jobs = rung_jobs(rung, candidates, _indexes(listed), parallelism, gpu)
        seen = [s for s in (by.get((RUNG, rung, j.part)) for j in jobs) if s is not None]
        missing = tuple(j for j in jobs if (RUNG, rung, j.part) not in by)
        done = sum(s.done for s in seen)
        if missing:
            return Next(rung, candidates, done, create=missing, best=best, step=at_rung)
        if not all(s.finished for s in seen):
            return Next(rung, candidates, done, best=best, step=at_rung)
        # Failed indexes (FailIndex) fail the Job but not the search: finish ranks the rest.
        finish, at_finish, done = by.get((FINISH, rung, "")), (FINISH, rung), candidates
        if finish is None:
            made = (Create(FINISH, rung),)
            return Next(rung, candidates, done, create=made, best=best, step=at_finish)
        if not finish.finished:
            return Next(rung, candidates, done, best=best, step=at_finish)
        if finish.failed or finish.message is None:
            why = _why(finish, f"finish of rung {rung}")
            return Next(rung, candidates, done, failed=why, best=best, step=at_finish)
        if finish.message.get("outcome") != "NextRung":
            return Next(rung, candidates, done, result=finish.message, best=best, step=at_finish)
        found = finish.message.get("best")
        best = found if isinstance(found, dict) else best
        listed, rung = finish.message, rung + 1


def _indexes(message: dict[str, Any]) -> list[int] | None:
    """The listing's ``gpuIndexes`` (None: a runtime that does not say, or not a list)."""
    value = message.get("gpuIndexes")
    if not isinstance(value, list) or not all(type(i) is int for i in value):
        return None
    return list(value)


def _why(step: Step, what: str) -> str:
    if step.message is not None and step.message.get("message"):
        return f"{what} failed: {step.message.get('outcome')}: {step.message['message']}"
    return f"{what} failed: {step.failure or 'no termination message'}"


def progress(n: Next) -> str:
    """The printer column: rung R, done/total candidates."""
    return f"rung {n.rung}: {n.done}/{n.candidates}"


def with_search(decision: Decision, n: Next, parallelism: int, started: bool = True) -> Decision:
    """The single-Job status of the step Job that speaks for the search, told as a search:
    status.automl, the progress column, and past the plan a phase of Training (a trial or
    finish pod has no data-checks container, which the single-Job reading expects)."""
    status = dict(decision.status)
    kind, rung = n.step
    automl: dict[str, Any] = {
        "step": kind if kind == PLAN else f"{kind}-{rung}",
        "rung": n.rung,
        "candidates": n.candidates,
        "candidatesDone": n.done,
    }
    if n.best is not None:
        automl["best"] = n.best
    status["automl"] = automl
    status["progress"] = progress(n) if kind != PLAN else "planning"
    # Between two pods of a rung the single-Job reading would say Pending: still Training.
    if kind != PLAN and started and status.get("phase") not in TERMINAL:
        status["phase"] = "Training"
        doing = f"{n.done}/{n.candidates} candidates of rung {rung}, {parallelism} at a time"
        if kind == FINISH:
            doing = f"ranking rung {rung} ({n.done} candidates)"
        status["message"] = f"AutoML: {doing}"
    return Decision(status, decision.result, decision.events)
