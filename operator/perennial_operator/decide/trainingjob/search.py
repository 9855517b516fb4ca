"""The next step of an AutoML search fanned out over pods (spec.automl.parallelism > 1).

The search is a chain of Jobs, each named after its step so that what exists is the state:

    plan → rung-0 (Indexed, one pod per candidate) → finish-0 → rung-1 → finish-1 → ...

A finish Job's termination message says either "NextRung" (with the next rung's candidate
count) or carries the training result. Pure: the caller lists the TrainingJob's step Jobs
(and their pods' termination messages); this decides what to create or report. After an
operator restart the same Jobs give the same answer, and a step whose Job exists is never
created twice (the trainer's own state on the claim makes each trial run at most once).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from perennial_operator.api.names import STEP_FINISH, STEP_PLAN, STEP_RUNG
from perennial_operator.decide.trainingjob.status import TERMINAL, Decision

PLAN, RUNG, FINISH = STEP_PLAN, STEP_RUNG, STEP_FINISH


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

    @property
    def finished(self) -> bool:
        return self.complete or self.failed


@dataclass(frozen=True)
class Next:
    """What to do now. ``create``: (kind, rung, candidates) of a Job to create; ``result``:
    the finished search's training result (register it as the single pod's); ``failed``:
    why the search failed; none of these: wait for the running step."""

    rung: int
    candidates: int = 0  # of the current rung (0 before the plan has run)
    done: int = 0
    create: tuple[str, int, int] | None = None
    result: dict[str, Any] | None = None
    failed: str | None = None
    best: dict[str, Any] | None = None  # the best candidate of the last ranked rung
    step: tuple[str, int] = (PLAN, 0)  # (kind, rung) of the step Job that speaks for it now


def step_names(rung: int) -> tuple[str, str]:
    """The name suffixes of a rung's Indexed Job and its finish Job."""
    return f"{RUNG}-{rung}", f"{FINISH}-{rung}"


def next_step(steps: list[Step]) -> Next:
    """Walk the chain from the plan; the first link that is missing or unfinished decides.
    ``Next.step`` is the step that speaks for the search now (created, running or last)."""
    by = {(s.kind, s.rung): s for s in steps}
    plan = by.get((PLAN, 0))
    at_plan = (PLAN, 0)
    if plan is None:
        return Next(0, create=(PLAN, 0, 0), step=at_plan)
    if not plan.finished:
        return Next(0, step=at_plan)
    if plan.failed or plan.message is None:
        return Next(0, failed=_why(plan, "the plan step"), step=at_plan)
    candidates, rung, best = int(plan.message.get("candidates") or 0), 0, None
    while True:
        trials, at_rung = by.get((RUNG, rung)), (RUNG, rung)
        if trials is None:
            return Next(rung, candidates, create=(RUNG, rung, candidates), best=best, step=at_rung)
        if not trials.finished:
            return Next(rung, candidates, trials.done, best=best, step=at_rung)
        # Failed indexes (FailIndex) fail the Job but not the search: finish ranks the rest.
        finish, at_finish, done = by.get((FINISH, rung)), (FINISH, rung), trials.total
        if finish is None:
            return Next(rung, candidates, done, create=(FINISH, rung, 0), best=best, step=at_finish)
        if not finish.finished:
            return Next(rung, candidates, done, best=best, step=at_finish)
        if finish.failed or finish.message is None:
            why = _why(finish, f"finish of rung {rung}")
            return Next(rung, candidates, done, failed=why, best=best, step=at_finish)
        if finish.message.get("outcome") != "NextRung":
            return Next(rung, candidates, done, result=finish.message, best=best, step=at_finish)
        found = finish.message.get("best")
        best = found if isinstance(found, dict) else best
        rung, candidates = rung + 1, int(finish.message.get("candidates") or 0)


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
