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


def step_names(rung: int) -> tuple[str, str]:
    """The name suffixes of a rung's Indexed Job and its finish Job."""
    return f"{RUNG}-{rung}", f"{FINISH}-{rung}"


def next_step(steps: list[Step]) -> Next:
    """Walk the chain from the plan; the first link that is missing or unfinished decides."""
    by = {(s.kind, s.rung): s for s in steps}
    plan = by.get((PLAN, 0))
    if plan is None:
        return Next(0, create=(PLAN, 0, 0))
    if not plan.finished:
        return Next(0)
    if plan.failed or plan.message is None:
        return Next(0, failed=_why(plan, "the plan step"))
    candidates, rung, best = int(plan.message.get("candidates") or 0), 0, None
    while True:
        trials = by.get((RUNG, rung))
        if trials is None:
            return Next(rung, candidates, create=(RUNG, rung, candidates), best=best)
        if not trials.finished:
            return Next(rung, candidates, trials.done, best=best)
        # Failed indexes (FailIndex) fail the Job but not the search: finish ranks the rest.
        finish = by.get((FINISH, rung))
        if finish is None:
            return Next(rung, candidates, trials.total, create=(FINISH, rung, 0), best=best)
        if not finish.finished:
            return Next(rung, candidates, trials.total, best=best)
        if finish.failed or finish.message is None:
            return Next(
                rung, candidates, trials.total, failed=_why(finish, f"finish of rung {rung}")
            )
        if finish.message.get("outcome") != "NextRung":
            return Next(rung, candidates, trials.total, result=finish.message, best=best)
        best = finish.message.get("best") if isinstance(finish.message.get("best"), dict) else best
        rung, candidates = rung + 1, int(finish.message.get("candidates") or 0)


def _why(step: Step, what: str) -> str:
    if step.message is not None and step.message.get("message"):
        return f"{what} failed: {step.message.get('outcome')}: {step.message['message']}"
    return f"{what} failed: {step.failure or 'no termination message'}"


def progress(n: Next) -> str:
    """The printer column: rung R, done/total candidates."""
    return f"rung {n.rung}: {n.done}/{n.candidates}"
