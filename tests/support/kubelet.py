"""Write pod status the way a kubelet would, for pods kwok is told to leave alone
(annotation kwok.x-k8s.io/status=custom). Used where a test needs a chosen exit code or
termination message."""

from __future__ import annotations

from typing import Any

from perennial_operator.k8s.kube import Kube, now_iso

LEAVE_TO_TEST = {"kwok.x-k8s.io/status": "custom"}


def _terminated(name: str, code: int, message: str) -> dict[str, Any]:
    stamp = now_iso()
    return {
        "name": name,
        "image": "perennial/runtime:test",
        "imageID": "",
        "ready": False,
        "restartCount": 0,
        "state": {
            "terminated": {
                "exitCode": code,
                "reason": "Completed" if code == 0 else "Error",
                "message": message,
                "startedAt": stamp,
                "finishedAt": stamp,
            }
        },
    }


def _running(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "image": "perennial/runtime:test",
        "imageID": "",
        "ready": True,
        "restartCount": 0,
        "started": True,
        "state": {"running": {"startedAt": now_iso()}},
    }


def _waiting(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "image": "perennial/runtime:test",
        "imageID": "",
        "ready": False,
        "restartCount": 0,
        "state": {"waiting": {"reason": "PodInitializing"}},
    }


def _patch(kube: Kube, namespace: str, pod: str, status: dict[str, Any]) -> None:
    kube.patch_status("v1", "Pod", namespace, pod, status)


def validating(kube: Kube, namespace: str, pod: str) -> None:
    _patch(
        kube,
        namespace,
        pod,
        {
            "phase": "Pending",
            "startTime": now_iso(),
            "initContainerStatuses": [_running("validate")],
            "containerStatuses": [_waiting("train")],
        },
    )


def training(kube: Kube, namespace: str, pod: str) -> None:
    _patch(
        kube,
        namespace,
        pod,
        {
            "phase": "Running",
            "startTime": now_iso(),
            "initContainerStatuses": [_terminated("validate", 0, "")],
            "containerStatuses": [_running("train")],
        },
    )


def finish(
    kube: Kube, namespace: str, pod: str, *, exit_code: int, message: str, in_init: bool = False
) -> None:
    """End the pod: the init container (data checks) or the train container exits."""
    if in_init:
        init = [_terminated("validate", exit_code, message)]
        main = [_waiting("train")]
    else:
        init = [_terminated("validate", 0, "")]
        main = [_terminated("train", exit_code, message)]
    phase = "Succeeded" if exit_code == 0 and not in_init else "Failed"
    _patch(
        kube,
        namespace,
        pod,
        {"phase": phase, "initContainerStatuses": init, "containerStatuses": main},
    )
