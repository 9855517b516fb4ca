"""An AutoML search fanned out over pods (spec.automl.parallelism > 1): gather the step
Jobs, decide the next step (decide/trainingjob/search.py), create it. Kept apart from the
single-Job path in reconcile/trainingjob.py, which calls ``advance`` instead of its own
start and hands the step Job that speaks for the search to the same status and
registration code (a finish Job's pod leaves the same result as the single training pod).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from perennial_operator.api.group import LABEL_TRAININGJOB_UID
from perennial_operator.api.names import STEP_PART_GPU as GPU
from perennial_operator.api.names import STEP_PLAN, TRAIN_CONTAINER
from perennial_operator.config import OperatorConfig
from perennial_operator.decide.ownership import name_conflict, owned_by
from perennial_operator.decide.trainingjob import observed
from perennial_operator.decide.trainingjob.search import Next, Step, next_step, with_search
from perennial_operator.decide.trainingjob.termination import parse_message
from perennial_operator.desired import trainingjob as desired_tj
from perennial_operator.desired.placement import Placement
from perennial_operator.desired.trainingjob_search import (
    LABEL_STEP,
    asks_for_gpu,
    parallelism,
    step_job,
    step_label,
)
from perennial_operator.k8s.kube import KubeApi
from perennial_operator.reconcile.artifact_claim import ensure_artifact_claim

__all__ = ("Advanced", "advance", "with_search")


@dataclass(frozen=True)
class Advanced:
    job: observed.JobObs | None  # the step Job that speaks for the search now
    pods: list[observed.PodObs]
    blocked: tuple[str, str] | None  # a missing or refused pool, a missing baseline: (reason, why)
    conflict: str | None  # the spec ConfigMap's name is someone else's
    next: Next


# What a new step Job needs, looked up only when one is created: the pool's placement and
# the baseline's URI, each with what blocks it (reconcile/trainingjob.py's lookups).
Inputs = Callable[
    [], tuple[tuple[Placement, tuple[str, str] | None], tuple[str | None, tuple[str, str] | None]]
]


def advance(kube: KubeApi, tj: dict[str, Any], config: OperatorConfig, inputs: Inputs) -> Advanced:
    namespace, uid = tj["metadata"]["namespace"], tj["metadata"]["uid"]
    cm_name = desired_tj.configmap_name(tj)
    cm = kube.get("v1", "ConfigMap", namespace, cm_name)
    conflict = name_conflict(tj, [("ConfigMap", cm_name, cm)])
    if conflict:
        return Advanced(None, [], None, conflict, Next(0))
    selector = f"{LABEL_TRAININGJOB_UID}={uid}"
    jobs = {
        str(j["metadata"]["labels"][LABEL_STEP]): j
        for j in kube.list("batch/v1", "Job", namespace, selector)
        if owned_by(j, uid) and LABEL_STEP in (j["metadata"].get("labels") or {})
    }
    pods = kube.list("v1", "Pod", namespace, selector)
    steps = [_step(label, job, _pods_of(job, pods)) for label, job in jobs.items()]
    found = [s for s in steps if s is not None]
    decided = next_step(found, parallelism(tj), asks_for_gpu(tj))
    blocked = None
    if decided.create:
        (where, pool_problem), (baseline, baseline_problem) = inputs()
        blocked = pool_problem or baseline_problem
        if blocked is None:
            ensure_artifact_claim(kube, tj, config)
            if cm is None:
                kube.apply(desired_tj.configmap(tj))
        for made in decided.create if blocked is None else ():
            manifest = step_job(tj, config, where, made.kind, made.rung, made.completions,
                                baseline, part=made.part, indexes=made.indexes,
                                parallel=made.parallelism)  # fmt: skip
            jobs[str(manifest["metadata"]["labels"][LABEL_STEP])] = kube.apply(manifest)
    kind, rung = decided.step
    # A split rung speaks through its CPU Job (its GPU Job when that is all there is).
    labels = (step_label(kind, rung), step_label(kind, rung, GPU))
    current = next((jobs[label] for label in labels if label in jobs), None)
    if current is None:
        return Advanced(None, [], blocked, None, decided)
    return Advanced(
        observed.job_obs(current),
        [observed.pod_obs(p) for p in _pods_of(current, pods)],
        blocked,
        None,
        decided,
    )


def _pods_of(job: dict[str, Any], pods: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # The label alone is not proof: only the Job's own pods count.
    return [p for p in pods if owned_by(p, job["metadata"].get("uid", ""))]


def _step(label: str, job: dict[str, Any], pods: list[dict[str, Any]]) -> Step | None:
    kind, _, rest = label.partition("-")
    number, _, part = rest.partition("-")
    if kind != STEP_PLAN and not number.isdigit() or part not in ("", GPU):
        return None  # not a label we write
    obs = observed.job_obs(job)
    spec, status = job.get("spec") or {}, job.get("status") or {}
    done = _count(status.get("completedIndexes")) + _count(status.get("failedIndexes"))
    return Step(
        kind,
        int(number or 0),
        complete=obs.complete,
        failed=obs.failure is not None,
        failure=": ".join(obs.failure) if obs.failure else "",
        message=_message([observed.pod_obs(p) for p in pods]),
        done=done,
        total=int(spec.get("completions") or 0),
        part=part,
    )


def _message(pods: list[observed.PodObs]) -> dict[str, Any] | None:
    """The newest terminated train container's message (a success's, else a failure's)."""
    ended = []
    for pod in pods:
        train = pod.container(TRAIN_CONTAINER)
        if train is not None and train.state == "terminated":
            ended.append((train.exit_code == 0, pod.created, pod.name, train.message))
    if not ended:
        return None
    return parse_message(max(ended)[3])


def _count(indexes: Any) -> int:
    """How many indexes "1,3-5" names (the Job's completedIndexes / failedIndexes)."""
    total = 0
    for part in str(indexes or "").split(","):
        low, _, high = part.partition("-")
        if low.strip().isdigit():
            total += int(high) - int(low) + 1 if high.strip().isdigit() else 1
    return total
