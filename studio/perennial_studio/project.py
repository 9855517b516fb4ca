"""What the Studio keeps of each object: pure functions from an API object to a smaller dict.

Custom resources are kept whole except for bookkeeping (managedFields, last-applied). The
noisy kinds (Pods, Events, Jobs, Deployments, Nodes) are cut down to the fields pages read,
so memory follows the number of objects, not their size. Nothing of a pod's env, volumes or
command is kept: the Studio never shows them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from perennial_operator.api.group import GROUP

Obj = dict[str, Any]
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
MAX_MESSAGE = 1024
MAX_TERMINATION_MESSAGE = 4096  # the kubelet's own limit
KEPT_ANNOTATIONS = (
    "prometheus.io/port",
    "prometheus.io/path",
    f"{GROUP}/retrain-reason",
    f"{GROUP}/idle-since",
    f"{GROUP}/cordoned-for-removal",
)


def _meta(obj: Mapping[str, Any], *, labels: bool = True) -> Obj:
    meta = obj.get("metadata") or {}
    kept: Obj = {
        "name": meta.get("name", ""),
        "namespace": meta.get("namespace"),
        "uid": meta.get("uid"),
        "creationTimestamp": meta.get("creationTimestamp"),
        "resourceVersion": meta.get("resourceVersion"),
    }
    if labels:
        kept["labels"] = dict(meta.get("labels") or {})
    annotations = meta.get("annotations") or {}
    kept["annotations"] = {k: annotations[k] for k in KEPT_ANNOTATIONS if k in annotations}
    owners = meta.get("ownerReferences") or []
    kept["ownerReferences"] = [{"kind": o.get("kind"), "name": o.get("name")} for o in owners]
    if meta.get("deletionTimestamp"):
        kept["deletionTimestamp"] = meta["deletionTimestamp"]
    return kept


def custom_resource(obj: Mapping[str, Any]) -> Obj:
    """A Perennial resource: everything but the bookkeeping."""
    meta = dict(obj.get("metadata") or {})
    meta.pop("managedFields", None)
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if k != LAST_APPLIED}
    meta["annotations"] = annotations
    return {**obj, "metadata": meta}


def _state(status: Mapping[str, Any], keep_message: bool) -> Obj:
    state = status.get("state") or {}
    kept: Obj = {
        "name": status.get("name"),
        "ready": bool(status.get("ready")),
        "restartCount": int(status.get("restartCount") or 0),
    }
    if "terminated" in state:
        term = state["terminated"] or {}
        kept["terminated"] = {
            "exitCode": term.get("exitCode"),
            "reason": term.get("reason"),
            "startedAt": term.get("startedAt"),
            "finishedAt": term.get("finishedAt"),
        }
        if keep_message and term.get("message"):
            kept["terminated"]["message"] = str(term["message"])[:MAX_TERMINATION_MESSAGE]
    elif "running" in state:
        kept["running"] = {"startedAt": (state["running"] or {}).get("startedAt")}
    elif "waiting" in state:
        waiting = state["waiting"] or {}
        kept["waiting"] = {
            "reason": waiting.get("reason"),
            "message": str(waiting.get("message") or "")[:MAX_MESSAGE],
        }
    return kept


def _requests(spec: Mapping[str, Any]) -> Obj:
    totals: dict[str, str] = {}
    for container in spec.get("containers") or []:
        for name, value in ((container.get("resources") or {}).get("requests") or {}).items():
            totals[name] = str(value) if name not in totals else f"{totals[name]}+{value}"
    return totals


def pod(obj: Mapping[str, Any]) -> Obj:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    meta = _meta(obj)
    # Termination messages are the trainer's report (data checks, timings): training pods only.
    training = f"{GROUP}/trainingjob" in meta["labels"]
    conditions = {c.get("type"): c for c in status.get("conditions") or []}
    scheduled = conditions.get("PodScheduled") or {}
    return {
        "metadata": meta,
        "spec": {
            "nodeName": spec.get("nodeName"),
            "nodeSelector": dict(spec.get("nodeSelector") or {}),
            "requests": _requests(spec),
        },
        "status": {
            "phase": status.get("phase"),
            "podIP": status.get("podIP"),
            "startTime": status.get("startTime"),
            "reason": status.get("reason"),
            "ready": (conditions.get("Ready") or {}).get("status") == "True",
            "unschedulable": scheduled.get("reason") == "Unschedulable",
            "scheduledMessage": str(scheduled.get("message") or "")[:MAX_MESSAGE],
            "initContainerStatuses": [
                _state(s, training) for s in status.get("initContainerStatuses") or []
            ],
            "containerStatuses": [
                _state(s, training) for s in status.get("containerStatuses") or []
            ],
        },
    }


def job(obj: Mapping[str, Any]) -> Obj:
    status = obj.get("status") or {}
    conditions = [
        {
            "type": c.get("type"),
            "status": c.get("status"),
            "reason": c.get("reason"),
            "message": str(c.get("message") or "")[:MAX_MESSAGE],
        }
        for c in status.get("conditions") or []
    ]
    return {
        "metadata": _meta(obj),
        "status": {
            "active": status.get("active", 0),
            "succeeded": status.get("succeeded", 0),
            "failed": status.get("failed", 0),
            "startTime": status.get("startTime"),
            "completionTime": status.get("completionTime"),
            "conditions": conditions,
        },
    }


def deployment(obj: Mapping[str, Any]) -> Obj:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    template = (spec.get("template") or {}).get("metadata") or {}
    return {
        "metadata": _meta(obj),
        "spec": {"replicas": spec.get("replicas"), "podLabels": dict(template.get("labels") or {})},
        "status": {
            "replicas": status.get("replicas", 0),
            "readyReplicas": status.get("readyReplicas", 0),
            "availableReplicas": status.get("availableReplicas", 0),
            "updatedReplicas": status.get("updatedReplicas", 0),
        },
    }


def node(obj: Mapping[str, Any]) -> Obj:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    conditions = {c.get("type"): c for c in status.get("conditions") or []}
    ready = conditions.get("Ready") or {}
    return {
        "metadata": _meta(obj),
        "spec": {
            "unschedulable": bool(spec.get("unschedulable")),
            "taints": [
                {"key": t.get("key"), "value": t.get("value"), "effect": t.get("effect")}
                for t in spec.get("taints") or []
            ],
        },
        "status": {
            "ready": ready.get("status") == "True",
            "readySince": ready.get("lastTransitionTime"),
            "allocatable": dict(status.get("allocatable") or {}),
        },
    }


def event(obj: Mapping[str, Any]) -> Obj:
    involved = obj.get("involvedObject") or obj.get("regarding") or {}
    source = obj.get("source") or {}
    meta = obj.get("metadata") or {}
    return {
        "metadata": {
            "name": meta.get("name", ""),
            "namespace": meta.get("namespace"),
            "uid": meta.get("uid"),
            "resourceVersion": meta.get("resourceVersion"),
        },
        "kind": involved.get("kind"),
        "name": involved.get("name"),
        "namespace": involved.get("namespace") or "",  # "" for cluster-scoped objects
        "type": obj.get("type") or "Normal",
        "reason": obj.get("reason") or "",
        "message": str(obj.get("message") or obj.get("note") or "")[:MAX_MESSAGE],
        "time": obj.get("lastTimestamp")
        or obj.get("eventTime")
        or obj.get("firstTimestamp")
        or meta.get("creationTimestamp"),
        "count": int(obj.get("count") or (obj.get("series") or {}).get("count") or 1),
        "source": source.get("component") or obj.get("reportingComponent") or "",
    }


PROJECTIONS: dict[str, Callable[[Mapping[str, Any]], Obj]] = {
    "Pod": pod,
    "Job": job,
    "Deployment": deployment,
    "Node": node,
    "Event": event,
}


def project(kind: str, obj: Mapping[str, Any]) -> Obj:
    return PROJECTIONS.get(kind, custom_resource)(obj)
