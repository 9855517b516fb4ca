"""TrainingJob status from what is observed: the Job, its pods, the registry.

Pure: `trainingjob_status(tj, job, pods, ...)` -> Decision. Phases:
Pending -> Validating -> Training -> Succeeded | Failed. Terminal phases are sticky: a
finished TrainingJob never goes back (its spec is immutable, see the CRD).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from perennial_operator.api import conditions as c
from perennial_operator.api import runtime_contract as rc
from perennial_operator.api.names import TRAIN_CONTAINER, VALIDATE_CONTAINER
from perennial_operator.decide.conditions import Condition, get_condition, set_condition
from perennial_operator.decide.events import Event
from perennial_operator.decide.kstatus import Health, has_health, with_health
from perennial_operator.decide.modelversion.metrics import primary_metric
from perennial_operator.decide.trainingjob.observed import JobObs, PodObs
from perennial_operator.decide.trainingjob.termination import (
    failure_report,
    parse_message,
    result_problem,
)

TERMINAL = ("Succeeded", "Failed")


def needs_resync(status: dict[str, Any]) -> bool:
    """May the TrainingJob still need the operator without an event to say so: unfinished,
    or Succeeded with its ModelVersion not registered yet (the safety-net loop's filter)."""
    phase = status.get("phase")
    if phase not in TERMINAL:
        return True
    return phase == "Succeeded" and not status.get("modelVersion")


@dataclass
class Decision:
    status: dict[str, Any]
    result: dict[str, Any] | None = None  # the parsed success result, when there is one
    events: list[Event] = field(default_factory=list)

    @property
    def phase(self) -> str:
        return str(self.status.get("phase"))


@dataclass(frozen=True)
class Context:
    """Facts gathered besides the Job and pods."""

    now: str
    artifact_uri: str
    registered: str | None = None  # name of the ModelVersion already registered for this job
    pool_problem: str | None = None  # why the named ComputePool cannot be used
    pool_reason: str = c.COMPUTE_POOL_NOT_FOUND  # ... as a condition reason
    name_conflict: str | None = None  # a child's name is held by an object not ours
    registration_refused: str | None = None  # the API server's reason for refusing the MV


def _newest(pods: list[PodObs]) -> PodObs | None:
    return max(pods, key=lambda p: (p.created, p.name)) if pods else None


def _permanent_failure(pods: list[PodObs]) -> tuple[str, str, str] | None:
    """(container, reason, report) of a runtime exit code that retrying cannot fix."""
    for pod in sorted(pods, key=lambda p: p.created, reverse=True):
        for container in (*pod.init, *pod.main):
            if container.state == "terminated" and container.exit_code in rc.PERMANENT_EXIT_CODES:
                reason = rc.PERMANENT_FAILURE_REASONS[container.exit_code]
                return container.name, reason, failure_report(container.message)
    return None


def _last_crash(pods: list[PodObs]) -> str:
    for pod in sorted(pods, key=lambda p: p.created, reverse=True):
        for container in (*pod.init, *pod.main):
            if container.state == "terminated" and container.exit_code not in (None, 0):
                detail = (
                    failure_report(container.message) if container.message else container.reason
                )
                return f"container {container.name} exited {container.exit_code}: {detail}"
    return "no container exit recorded"


def _success_result(pods: list[PodObs]) -> dict[str, Any] | None:
    for pod in sorted(pods, key=lambda p: p.created, reverse=True):
        train = pod.container(TRAIN_CONTAINER)
        if train and train.state == "terminated" and train.exit_code == 0:
            return parse_message(train.message)
    return None


def _is_sha256(value: str) -> bool:
    return len(value) == 64 and all(ch in "0123456789abcdef" for ch in value)


def _numbers(raw: Any) -> dict[str, float]:
    """Only finite numbers fit the status schema (name -> number); NaN or Infinity would
    make the status patch invalid JSON."""
    if not isinstance(raw, dict):
        return {}
    return {
        str(k): float(v)
        for k, v in raw.items()
        if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
    }


class _Builder:
    """Accumulates conditions on top of the previous status."""

    def __init__(self, tj: dict[str, Any], now: str) -> None:
        self.previous: dict[str, Any] = dict(tj.get("status") or {})
        self.generation = int(tj["metadata"].get("generation", 1))
        self.now = now
        self.conditions: list[Condition] = list(self.previous.get("conditions") or [])
        self.fields: dict[str, Any] = {}

    def cond(self, type_: str, status: bool | None, reason: str, message: str) -> None:
        self.conditions = set_condition(
            self.conditions,
            type_=type_,
            status=status,
            reason=reason,
            message=message,
            generation=self.generation,
            now=self.now,
        )

    def status(self, phase: str, message: str) -> dict[str, Any]:
        out = {k: v for k, v in self.previous.items() if k not in ("conditions",)}
        out.update(self.fields)
        health = job_health(phase, message, self.conditions, out.get("modelVersion"))
        out.update(
            phase=phase,
            message=message,
            observedGeneration=self.generation,
            conditions=with_health(
                self.conditions, health, generation=self.generation, now=self.now
            ),
        )
        return out


def job_health(
    phase: str, message: str, conditions: list[Condition], registered: str | None
) -> Health:
    """Ready once trained and registered; Stalled when Failed (a finished job never runs
    again: its spec is immutable); otherwise on its way, the phase as the reason."""
    if phase == "Failed":
        failed = get_condition(conditions, c.FAILED) or {}
        reason = str(failed.get("reason") or c.JOB_FAILED)
        return Health.stuck(reason, f"{message}; create a new TrainingJob to train again")
    if phase == "Succeeded":
        if registered:
            return Health(True, c.MODEL_REGISTERED, f"registered as {registered}")
        return Health(False, c.NOT_YET, message)
    scheduled = get_condition(conditions, c.SCHEDULED) or {}
    if phase == "Pending" and scheduled.get("status") == "False":
        return Health(False, str(scheduled.get("reason")), message)
    return Health(False, phase, message)


def _attempts(job: JobObs | None, pods: list[PodObs]) -> int:
    if job is None:
        return 0
    return max(job.active + job.succeeded + job.failed, len(pods))


def _running_phase(b: _Builder, pod: PodObs | None, job: JobObs) -> tuple[str, str]:
    retry = f" (attempt {job.failed + 1}, after {job.failed} failed)" if job.failed else ""
    if pod is not None and pod.phase == "Succeeded":
        # The Job controller marks the Job Complete a moment after its pod succeeds.
        return "Training", f"pod {pod.name} finished; waiting for the Job to complete"
    if pod is not None and pod.phase == "Failed":
        return "Pending", f"{_last_crash([pod])}; waiting for the Job controller to retry"
    if pod is None:
        return "Pending", f"waiting for the Job controller to start a pod{retry}"
    if pod.unschedulable:
        b.cond(c.SCHEDULED, False, c.UNSCHEDULABLE, pod.unschedulable)
        return "Pending", f"pod {pod.name} cannot be scheduled: {pod.unschedulable}"
    validate = pod.container(VALIDATE_CONTAINER)
    if validate is None or validate.state != "terminated":
        if pod.phase == "Pending" and not pod.init:
            return "Pending", f"waiting for pod {pod.name} to start{retry}"
        b.cond(c.DATA_VALIDATED, None, c.VALIDATING, "the data checks are running")
        return "Validating", f"checking the data in pod {pod.name}{retry}"
    b.cond(c.DATA_VALIDATED, True, c.DATA_CHECKS_PASSED, "every data check passed")
    return "Training", f"training in pod {pod.name}{retry}"


def _succeeded(b: _Builder, tj: dict[str, Any], pods: list[PodObs], ctx: Context) -> Decision:
    result = _success_result(pods)
    digest = str((result or {}).get("artifact", {}).get("sha256", ""))
    if result is None or result.get("outcome") != "Succeeded" or not _is_sha256(digest):
        message = "the training pod succeeded but left no readable result with an artifact sha256"
        b.cond(c.COMPLETE, False, c.RESULT_UNREADABLE, message)
        b.cond(c.FAILED, True, c.RESULT_UNREADABLE, message)
        return Decision(b.status("Failed", message), events=[Event("Warning", "Failed", message)])
    invalid = result_problem(result)
    if invalid is None and ctx.registration_refused:
        reason, message = c.REGISTRATION_REFUSED, ctx.registration_refused
    elif invalid is not None:
        reason, message = c.RESULT_INVALID, f"the training result cannot be registered: {invalid}"
    if invalid is not None or ctx.registration_refused:
        b.cond(c.COMPLETE, False, reason, message)
        b.cond(c.FAILED, True, reason, message)
        return Decision(b.status("Failed", message), events=[Event("Warning", reason, message)])
    artifact = dict(result.get("artifact") or {})
    metrics = _numbers(result.get("metrics"))
    b.fields.update(
        metrics=metrics,
        baselineMetrics=_numbers(result.get("baselineMetrics")),
        dataset=dict(result.get("dataset") or {}),
        artifact={
            "uri": ctx.artifact_uri,
            "sha256": artifact.get("sha256", ""),
            "format": artifact.get("format", "skops"),
        },
        algorithm=result.get("algorithm") or tj["spec"].get("algorithm", "auto"),
        hyperparameters=dict(result.get("hyperparameters") or {}),
        primaryMetric=primary_metric(
            tj["spec"]["task"], metrics, (tj["spec"].get("automl") or {}).get("metric")
        ),
    )
    b.cond(c.DATA_VALIDATED, True, c.DATA_CHECKS_PASSED, "every data check passed")
    b.cond(c.COMPLETE, True, c.TRAINING_SUCCEEDED, "training finished")
    b.cond(c.FAILED, False, c.TRAINING_SUCCEEDED, "")
    if ctx.registered:
        b.fields["modelVersion"] = ctx.registered
        b.cond(c.REGISTERED, True, c.MODEL_REGISTERED, f"registered as {ctx.registered}")
        message = f"trained and registered as {ctx.registered}"
    else:
        b.cond(c.REGISTERED, False, c.NOT_YET, "registering the model")
        message = "trained; registering the model"
    # The ModelVersion gets the metrics as checked here, never the raw message's.
    clean = {**result, "metrics": metrics, "baselineMetrics": b.fields["baselineMetrics"]}
    return Decision(b.status("Succeeded", message), result=clean)


def _failed(b: _Builder, job: JobObs, pods: list[PodObs]) -> Decision:
    permanent = _permanent_failure(pods)
    if permanent is not None:
        container, reason, report = permanent
        if reason == c.DATA_VALIDATION_FAILED:
            b.cond(c.DATA_VALIDATED, False, reason, report)
        message = f"{reason} in container {container} (not retried): {report}"
    else:
        assert job.failure is not None
        reason = (
            job.failure[0]
            if job.failure[0] in (c.BACKOFF_LIMIT_EXCEEDED, c.DEADLINE_EXCEEDED)
            else c.JOB_FAILED
        )
        message = f"{job.failure[0]}: {job.failure[1]}; last error: {_last_crash(pods)}"
    b.cond(c.COMPLETE, False, reason, message)
    b.cond(c.FAILED, True, reason, message)
    b.fields["completionTime"] = b.previous.get("completionTime") or b.now
    return Decision(b.status("Failed", message), events=[Event("Warning", reason, message)])


def finished(status: dict[str, Any]) -> bool:
    """Terminal and fully recorded: a Failed job, or a Succeeded one with its model registered."""
    phase = status.get("phase")
    return phase == "Failed" or (phase == "Succeeded" and bool(status.get("modelVersion")))


def trainingjob_status(
    tj: dict[str, Any], job: JobObs | None, pods: list[PodObs], ctx: Context
) -> Decision:
    b = _Builder(tj, ctx.now)
    previous_phase = b.previous.get("phase")
    if finished(b.previous):  # nothing moves again; Ready/Stalled added to older objects
        if has_health(b.conditions, b.generation):
            return Decision(dict(b.previous))
        return Decision(b.status(str(b.previous["phase"]), str(b.previous.get("message", ""))))
    if ctx.name_conflict:  # nothing is written or read as ours until the name is free
        b.cond(c.SCHEDULED, False, c.NAME_CONFLICT, ctx.name_conflict)
        return Decision(b.status("Pending", ctx.name_conflict))
    if ctx.pool_problem and job is None:
        b.cond(c.SCHEDULED, False, ctx.pool_reason, ctx.pool_problem)
        return Decision(b.status("Pending", ctx.pool_problem))
    b.fields["attempts"] = _attempts(job, pods)
    if not b.previous.get("algorithm") and tj["spec"].get("algorithm", "auto") != "auto":
        b.fields["algorithm"] = tj["spec"]["algorithm"]  # AutoML reports its pick on success
    if job is not None:
        b.fields["jobName"] = job.name
        if job.start_time and not b.previous.get("startTime"):
            b.fields["startTime"] = job.start_time
        if job.completion_time:
            b.fields["completionTime"] = job.completion_time
    if job is None:
        decision = Decision(b.status("Pending", "creating the training Job"))
    elif job.complete:
        decision = _succeeded(b, tj, pods, ctx)
    elif job.failure is not None:
        decision = _failed(b, job, pods)
    else:
        pod = _newest(pods)
        if pod is not None and not pod.unschedulable:
            b.cond(c.SCHEDULED, True, "Scheduled", f"pod {pod.name} is scheduled")
        phase, message = _running_phase(b, pod, job)
        decision = Decision(b.status(phase, message))
    if decision.phase != previous_phase:
        kind = "Warning" if decision.phase == "Failed" else "Normal"
        if not any(e.type == kind for e in decision.events):
            decision.events.append(Event(kind, decision.phase, decision.status["message"]))
    return decision
