"""Pure: which pod and container of a TrainingJob to read, and how far the job has come.

A training pod has an init container `validate` (the data checks) and the container
`train`; a Job may have made several pods (retries after a crash). The newest pod is the one
that matters; its `validate` container until the checks are over, then `train`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

VALIDATE, TRAIN = "validate", "train"
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
TRAININGJOB_LABEL = "perennial.dev/trainingjob"
PHASES = ("Pending", "Validating", "Training", "Succeeded")
TERMINAL = ("Succeeded", "Failed")


def pod_selector(tj: Mapping[str, Any]) -> str:
    job = (tj.get("status") or {}).get("jobName")
    if job:
        return f"{JOB_NAME_LABEL}={job}"
    return f"{TRAININGJOB_LABEL}={tj['metadata']['name']}"


def newest_pod(pods: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    if not pods:
        return None
    return max(
        pods, key=lambda p: (p["metadata"].get("creationTimestamp") or "", p["metadata"]["name"])
    )


def _state(pod: Mapping[str, Any], container: str) -> Mapping[str, Any]:
    status = pod.get("status") or {}
    for entry in (
        *(status.get("initContainerStatuses") or []),
        *(status.get("containerStatuses") or []),
    ):
        if entry.get("name") == container:
            return entry.get("state") or {}
    return {}


def started(pod: Mapping[str, Any], container: str) -> bool:
    state = _state(pod, container)
    return "running" in state or "terminated" in state


def finished(pod: Mapping[str, Any], container: str) -> bool:
    return "terminated" in _state(pod, container)


def failed(pod: Mapping[str, Any], container: str) -> bool:
    terminated = _state(pod, container).get("terminated") or {}
    return bool(terminated) and terminated.get("exitCode") not in (0, None)


def containers_to_show(pod: Mapping[str, Any]) -> list[str]:
    """The containers whose logs tell the story so far, in order: `validate` once it has
    started, `train` once it has started (a custom image's pod: its own containers)."""
    names = [c["name"] for c in (pod.get("spec") or {}).get("initContainers") or []]
    names += [c["name"] for c in (pod.get("spec") or {}).get("containers") or []]
    shown = [name for name in names if started(pod, name)]
    return shown or names[:1]


@dataclass(frozen=True)
class Progress:
    phase: str
    step: int  # completed steps out of len(PHASES) - 1
    total: int
    message: str
    done: bool
    succeeded: bool


def progress(tj: Mapping[str, Any]) -> Progress:
    status = tj.get("status") or {}
    phase = str(status.get("phase") or "Pending")
    total = len(PHASES) - 1
    step = total if phase in TERMINAL else PHASES.index(phase) if phase in PHASES else 0
    return Progress(
        phase, step, total, str(status.get("message") or ""), phase in TERMINAL,
        phase == "Succeeded",
    )  # fmt: skip
