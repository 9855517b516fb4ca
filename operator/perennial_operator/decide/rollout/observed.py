"""Plain summaries of the serving Deployments and pods, parsed from API dicts."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from perennial_operator.api.group import LABEL_MODEL_VERSION
from perennial_operator.api.timestamps import epoch
from perennial_operator.decide.rollout.machine import Track


def _version(labels: Mapping[str, str]) -> int | None:
    raw = labels.get(LABEL_MODEL_VERSION)
    return int(raw) if raw and raw.isdigit() else None


def track_of(deployment: Mapping[str, Any] | None) -> Track | None:
    """A Deployment as the rollout sees it. Rolled out = the controller saw the latest
    spec, every pod runs the latest template, none are left over, all are available."""
    if deployment is None:
        return None
    spec, status = deployment.get("spec") or {}, deployment.get("status") or {}
    replicas = int(spec.get("replicas", 1))
    labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
    seen = int(status.get("observedGeneration", 0)) >= int(
        deployment["metadata"].get("generation", 1)
    )
    rolled_out = (
        seen
        and int(status.get("updatedReplicas", 0)) == replicas
        and int(status.get("replicas", 0)) == replicas
        and int(status.get("availableReplicas", 0)) >= replicas
    )
    return Track(_version(labels), replicas, int(status.get("readyReplicas", 0)), rolled_out)


def pod_is_ready(pod: Mapping[str, Any]) -> bool:
    status = pod.get("status") or {}
    if pod["metadata"].get("deletionTimestamp") or not status.get("podIP"):
        return False
    conditions = status.get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


@dataclass(frozen=True)
class ServingPod:
    name: str
    ip: str
    restarts: int  # container restarts: each one resets the server's counters


def ready_pods(pods: Iterable[Mapping[str, Any]], version: int) -> list[ServingPod]:
    """The ready pods that serve `version`, by name."""
    return sorted(
        (
            ServingPod(
                str(p["metadata"]["name"]),
                str(p["status"]["podIP"]),
                sum(
                    int(s.get("restartCount", 0))
                    for s in p["status"].get("containerStatuses") or []
                ),
            )
            for p in pods
            if pod_is_ready(p) and _version(p["metadata"].get("labels") or {}) == version
        ),
        key=lambda pod: pod.name,
    )


def ready_pod_ips(pods: Iterable[Mapping[str, Any]], version: int) -> list[str]:
    """IPs of the ready pods that serve `version`."""
    return sorted(
        str(p["status"]["podIP"])
        for p in pods
        if pod_is_ready(p) and _version(p["metadata"].get("labels") or {}) == version
    )


def ready_pod_starts(pods: Iterable[Mapping[str, Any]], version: int) -> dict[str, float]:
    """When each ready pod of `version` started (epoch seconds; 0 if unknown), by IP: the
    pod's counters count nothing older."""
    return {
        str(p["status"]["podIP"]): epoch(
            p["status"].get("startTime") or p["metadata"].get("creationTimestamp")
        )
        for p in pods
        if pod_is_ready(p) and _version(p["metadata"].get("labels") or {}) == version
    }
