"""The next step of a fanned-out AutoML search, from the step Jobs that exist."""

from __future__ import annotations

import pytest

from perennial_operator.decide.trainingjob.search import (
    FINISH,
    GPU,
    PLAN,
    RUNG,
    Create,
    Next,
    Step,
    next_step,
    progress,
    rung_jobs,
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
    assert next_step([]) == Next(0, create=(Create(PLAN, 0),), step=(PLAN, 0))


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
    made = (Create(RUNG, 0, 12, 4),)
    assert next_step([PLANNED], 4) == Next(0, 12, create=made, step=(RUNG, 0))


def test_a_running_rung_reports_its_progress() -> None:
    decided = next_step([PLANNED, _rung(0, 12, done=5)])
    assert decided == Next(0, 12, 5, step=(RUNG, 0)) and progress(decided) == "rung 0: 5/12"


@pytest.mark.parametrize("failed", [False, True], ids=["complete", "some-indexes-failed"])
def test_a_finished_rung_is_ranked_even_when_indexes_failed(failed: bool) -> None:
    decided = next_step([PLANNED, _rung(0, 12, failed=failed)])
    assert decided.create == (Create(FINISH, 0),) and decided.failed is None
    assert decided.step == (FINISH, 0)


def test_next_rung_is_created_with_the_finish_steps_candidates_and_best() -> None:
    decided = next_step([PLANNED, _rung(0, 12), _next_rung(0, 4)], 8)
    made = (Create(RUNG, 1, 4, 4),)  # no more pods than candidates
    assert decided == Next(1, 4, create=made, best=BEST, step=(RUNG, 1))


def test_operator_restarted_between_rungs_resumes_from_the_jobs_alone() -> None:
    # The same Jobs, listed in any order, give the same next step: nothing is re-created.
    steps = [_next_rung(0, 4), _rung(1, 4, done=2), _rung(0, 12), PLANNED]
    assert next_step(steps) == Next(1, 4, 2, best=BEST, step=(RUNG, 1))
    assert next_step(list(reversed(steps))) == next_step(steps)


def test_the_last_finish_carries_the_training_result() -> None:
    steps = [PLANNED, _rung(0, 12), _next_rung(0, 4), _rung(1, 4),
             Step(FINISH, 1, complete=True, message=RESULT)]  # fmt: skip
    decided = next_step(steps)
    assert decided.result == RESULT and decided.create == () and decided.rung == 1
    assert decided.step == (FINISH, 1)


def test_a_failed_finish_fails_the_search() -> None:
    failure = {"outcome": "BudgetTooSmall", "message": "ran out"}
    steps = [PLANNED, _rung(0, 12), Step(FINISH, 0, failed=True, message=failure)]
    assert next_step(steps).failed == "finish of rung 0 failed: BudgetTooSmall: ran out"


def test_a_running_finish_is_waited_for() -> None:
    decided = next_step([PLANNED, _rung(0, 12), Step(FINISH, 0)])
    assert decided == Next(0, 12, 12, step=(FINISH, 0))


# A TrainingJob that asks for a GPU: only the candidates of families that use it (the
# runtime's gpuIndexes) run in the rung's GPU Job; the rest run without one.
LISTED_GPU = {"outcome": "Planned", "candidates": 12, "gpuIndexes": [3, 9]}
PLANNED_GPU = Step(PLAN, 0, complete=True, message=LISTED_GPU)


def test_a_gpu_search_splits_a_mixed_rung_by_family_sharing_the_parallelism() -> None:
    decided = next_step([PLANNED_GPU], 4, gpu=True)
    cpu = tuple(i for i in range(12) if i not in (3, 9))
    assert decided.create == (Create(RUNG, 0, 10, 3, "", cpu), Create(RUNG, 0, 2, 1, GPU, (3, 9)))
    # One Job made, the other not yet (a failed create, a restart): only the missing one.
    half = next_step([PLANNED_GPU, Step(RUNG, 0, done=4, total=10)], 4, gpu=True)
    assert half.create == (Create(RUNG, 0, 2, 1, GPU, (3, 9)),) and half.done == 4


def test_a_split_rung_is_finished_when_both_of_its_jobs_are() -> None:
    cpu_done = Step(RUNG, 0, complete=True, done=10, total=10)
    running = next_step([PLANNED_GPU, cpu_done, Step(RUNG, 0, done=1, total=2, part=GPU)], 4, True)
    assert running == Next(0, 12, 11, step=(RUNG, 0))
    gpu_done = Step(RUNG, 0, failed=True, done=2, total=2, part=GPU)  # an index failed
    ranked = next_step([PLANNED_GPU, cpu_done, gpu_done], 4, gpu=True)
    assert ranked.create == (Create(FINISH, 0),) and ranked.done == 12


@pytest.mark.parametrize(
    ("gpu_indexes", "gpu", "parts"),
    [
        ([3, 9], False, [("", None)]),  # no GPU asked for: one Job, as ever
        ([], True, [("", None)]),  # no family of the rung uses it: one Job without it
        ([0, 1, 2], True, [(GPU, None)]),  # all do: one Job with it
        (None, True, [(GPU, None)]),  # a runtime that does not say: all get it, as before
        ([1, 7, 99, -1], True, [("", (0, 2)), (GPU, (1,))]),  # out of range: ignored
    ],
)
def test_which_jobs_a_rung_is(
    gpu_indexes: list[int] | None, gpu: bool, parts: list[tuple[str, tuple[int, ...] | None]]
) -> None:
    candidates = 12 if gpu_indexes == [3, 9] else 3
    jobs = rung_jobs(2, candidates, gpu_indexes, 4, gpu)
    assert [(j.part, j.indexes) for j in jobs] == parts
    assert sum(j.completions for j in jobs) == candidates


@pytest.mark.parametrize(("parallelism", "gpus", "shares"), [(2, 1, (1, 1)), (2, 11, (1, 1)),
                         (8, 6, (4, 4)), (8, 1, (7, 1)), (8, 11, (1, 7))])  # fmt: skip
def test_a_split_rung_never_runs_more_pods_than_the_parallelism(
    parallelism: int, gpus: int, shares: tuple[int, int]
) -> None:
    cpu, gpu = rung_jobs(0, 12, list(range(gpus)), parallelism, gpu=True)
    assert (cpu.parallelism, gpu.parallelism) == shares
    assert cpu.parallelism + gpu.parallelism <= parallelism
    assert cpu.completions + gpu.completions == 12
