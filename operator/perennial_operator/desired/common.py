"""Pieces every child builder shares: owner references, security contexts, resources."""

from __future__ import annotations

from typing import Any

from perennial_operator.api.computepool import GPU_RESOURCE
from perennial_operator.api.group import API_VERSION

RUNTIME_UID = 65532  # the non-root user of the runtime image


def owner_reference(owner: dict[str, Any]) -> dict[str, Any]:
    meta = owner["metadata"]
    return {
        "apiVersion": owner.get("apiVersion", API_VERSION),
        "kind": owner["kind"],
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def restricted_pod_security() -> dict[str, Any]:
    """Pod-level settings that pass Pod Security 'restricted'."""
    return {
        "runAsNonRoot": True,
        "runAsUser": RUNTIME_UID,
        "runAsGroup": RUNTIME_UID,
        "fsGroup": RUNTIME_UID,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def restricted_container_security() -> dict[str, Any]:
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
    }


def resource_requirements(resources: dict[str, Any], gpu: int) -> dict[str, Any]:
    requests = {
        "cpu": str(resources.get("cpu", "1")),
        "memory": str(resources.get("memory", "2Gi")),
    }
    limits: dict[str, str] = {"memory": requests["memory"]}
    if gpu > 0:
        # Extended resources must be equal in requests and limits.
        requests[GPU_RESOURCE] = str(gpu)
        limits[GPU_RESOURCE] = str(gpu)
    return {"requests": requests, "limits": limits}
