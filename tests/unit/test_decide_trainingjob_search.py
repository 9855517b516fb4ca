"""The next step of a fanned-out AutoML search, from the step Jobs that exist."""

from __future__ import annotations

import pytest

from perennial_operator.decide.trainingjob.search import (
    FINISH,
    PLAN,
    RUNG,
    Next,
    Step,
    next_step,
    progress,
)

pytestmark = pytest.mark.unit

PLANNED = Step(PLAN, 0, complete=True, message={"outcome": "Planned", "candidates": 12})
RESULT = {"outcome": "Succeeded", "artifact": {"uri": "pvc://a/b"}}
BEST = {"algorithm": "svm", "score": 0.97, "rung": 0}


def _rung(rung: int, total: int, done: int | None = None, failed: bool = False) -> Step:
    finished = done is None or done == total
    return Step(RUNG, rung, complete=finished and not failed, failed=failed,
                done=total if done is None else done, total=total)  # fmt: skip


def _next_rung(rung: int, candidates: int) -> Step:
    message = {"outcome": "NextRung", "rung": rung + 1, "candidates": candidates, "best": BEST}
    return Step(FINISH, rung, complete=True, message=message)


def test_nothing_yet_creates_the_plan() -> None:
    assert next_step([]) == Next(0, create=(PLAN, 0, 0), step=(PLAN, 0))


def test_a_running_plan_is_waited_for() -> None:
    assert next_step([Step(PLAN, 0)]) == Next(0, step=(PLAN, 0))


def test_a_failed_plan_fails_the_search_with_the_trainers_reason() -> None:
    message = {"outcome": "DataInvalid", "message": "2 failing checks"}
    decided = next_step(
        [Step(PLAN, 0, failed=True, failure="BackoffLimitExceeded", message=message)]
    )
    assert decided.failed == "the plan step failed: DataInvalid: 2 failing checks"
    no_message = next_step([Step(PLAN, 0, failed=True, failure="DeadlineExceeded: too slow")])
    assert no_message.failed == "the plan step failed: DeadlineExceeded: too slow"


def test_a_planned_search_starts_rung_zero_with_the_planned_candidates() -> None:
    assert next_step([PLANNED]) == Next(0, 12, create=(RUNG, 0, 12), step=(RUNG, 0))


def test_a_running_rung_reports_its_progress() -> None:
    decided = next_step([PLANNED, _rung(0, 12, done=5)])
    assert decided == Next(0, 12, 5, step=(RUNG, 0)) and progress(decided) == "rung 0: 5/12"


@pytest.mark.parametrize("failed", [False, True], ids=["complete", "some-indexes-failed"])
def test_a_finished_rung_is_ranked_even_when_indexes_failed(failed: bool) -> None:
    decided = next_step([PLANNED, _rung(0, 12, failed=failed)])
    assert decided.create == (FINISH, 0, 0) and decided.failed is None
    assert decided.step == (FINISH, 0)


def test_next_rung_is_created_with_the_finish_steps_candidates_and_best() -> None:
    decided = next_step([PLANNED, _rung(0, 12), _next_rung(0, 4)])
    assert decided == Next(1, 4, create=(RUNG, 1, 4), best=BEST, step=(RUNG, 1))


def test_operator_restarted_between_rungs_resumes_from_the_jobs_alone() -> None:
    # The same Jobs, listed in any order, give the same next step: nothing is re-created.
    steps = [_next_rung(0, 4), _rung(1, 4, done=2), _rung(0, 12), PLANNED]
    assert next_step(steps) == Next(1, 4, 2, best=BEST, step=(RUNG, 1))
    assert next_step(list(reversed(steps))) == next_step(steps)


def test_the_last_finish_carries_the_training_result() -> None:
    steps = [PLANNED, _rung(0, 12), _next_rung(0, 4), _rung(1, 4),
             Step(FINISH, 1, complete=True, message=RESULT)]  # fmt: skip
    decided = next_step(steps)
    assert decided.result == RESULT and decided.create is None and decided.rung == 1
    assert decided.step == (FINISH, 1)


def test_a_failed_finish_fails_the_search() -> None:
    failure = {"outcome": "BudgetTooSmall", "message": "ran out"}
    steps = [PLANNED, _rung(0, 12), Step(FINISH, 0, failed=True, message=failure)]
    assert next_step(steps).failed == "finish of rung 0 failed: BudgetTooSmall: ran out"


def test_a_running_finish_is_waited_for() -> None:
    decided = next_step([PLANNED, _rung(0, 12), Step(FINISH, 0)])
    assert decided == Next(0, 12, 12, step=(FINISH, 0))
