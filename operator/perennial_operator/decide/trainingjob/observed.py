"""Plain summaries of what the cluster shows (Jobs, Pods), parsed from API dicts.

Pure parsing: the k8s layer fetches the dicts, these functions only read them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ContainerObs:
    name: str
    state: str  # waiting | running | terminated | unknown
    exit_code: int | None = None
    reason: str = ""
    message: str = ""


@dataclass(frozen=True)
class PodObs:
    name: str
    phase: str
    created: str
    unschedulable: str | None  # the scheduler's message while PodScheduled=False
    init: tuple[ContainerObs, ...]
    main: tuple[ContainerObs, ...]

    def container(self, name: str) -> ContainerObs | None:
        return next((c for c in (*self.init, *self.main) if c.name == name), None)


@dataclass(frozen=True)
class JobObs:
    name: str
    active: int
    succeeded: int
    failed: int
    complete: bool
    failure: tuple[str, str] | None  # (reason, message) of the Failed condition
    start_time: str | None
    completion_time: str | None


def container_obs(status: dict[str, Any]) -> ContainerObs:
    state = status.get("state") or {}
    if "terminated" in state and state["terminated"] is not None:
        term = state["terminated"]
        return ContainerObs(
            name=status["name"],
            state="terminated",
            exit_code=int(term.get("exitCode", 0)),
            reason=str(term.get("reason") or ""),
            message=str(term.get("message") or ""),
        )
    if state.get("running") is not None and "running" in state:
        return ContainerObs(name=status["name"], state="running")
    if state.get("waiting") is not None and "waiting" in state:
        waiting = state["waiting"]
        return ContainerObs(
            name=status["name"],
            state="waiting",
            reason=str(waiting.get("reason") or ""),
            message=str(waiting.get("message") or ""),
        )
    return ContainerObs(name=status["name"], state="unknown")


def pod_obs(pod: dict[str, Any]) -> PodObs:
    status = pod.get("status") or {}
    unschedulable = None
    for cond in status.get("conditions") or []:
        if cond.get("type") == "PodScheduled" and cond.get("status") == "False":
            unschedulable = str(cond.get("message") or cond.get("reason") or "Unschedulable")
    return PodObs(
        name=pod["metadata"]["name"],
        phase=str(status.get("phase") or "Pending"),
        created=str(pod["metadata"].get("creationTimestamp") or ""),
        unschedulable=unschedulable,
        init=tuple(container_obs(c) for c in status.get("initContainerStatuses") or []),
        main=tuple(container_obs(c) for c in status.get("containerStatuses") or []),
    )


def job_obs(job: dict[str, Any]) -> JobObs:
    status = job.get("status") or {}
    complete, failure = False, None
    for cond in status.get("conditions") or []:
        if cond.get("status") != "True":
            continue
        if cond.get("type") == "Complete":
            complete = True
        elif cond.get("type") == "Failed":
            failure = (str(cond.get("reason") or "Failed"), str(cond.get("message") or ""))
    return JobObs(
        name=job["metadata"]["name"],
        active=int(status.get("active") or 0),
        succeeded=int(status.get("succeeded") or 0),
        failed=int(status.get("failed") or 0),
        complete=complete,
        failure=failure,
        start_time=status.get("startTime"),
        completion_time=status.get("completionTime"),
    )
