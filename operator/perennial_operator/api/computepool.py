"""A ComputePool's node shape, labels and taints, as Kubernetes sees them: what the kwok
provider writes on the nodes it makes, and what the scaling decision packs pods against and
matches them with."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from perennial_operator.api.group import LABEL_COMPUTEPOOL, LABEL_GPU_TYPE

GPU_RESOURCE: Final = "nvidia.com/gpu"


def pool_node_labels(pool: Mapping[str, Any]) -> dict[str, str]:
    """Labels every node of the pool has (hostname aside): what pods are matched against."""
    spec = pool["spec"]
    labels = {
        "type": "kwok",
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        **{str(k): str(v) for k, v in (spec.get("labels") or {}).items()},
        LABEL_COMPUTEPOOL: pool["metadata"]["name"],
    }
    if spec["node"].get("gpuType"):
        labels[LABEL_GPU_TYPE] = str(spec["node"]["gpuType"])
    return labels


def pool_shape(pool: Mapping[str, Any]) -> dict[str, str]:
    """Capacity of one node as Kubernetes quantities (what kwok reports to the scheduler)."""
    node = pool["spec"]["node"]
    shape = {
        "cpu": str(node["cpu"]),
        "memory": str(node["memory"]),
        "pods": str(node.get("pods", 110)),
    }
    if int(node.get("gpu") or 0):
        shape[GPU_RESOURCE] = str(int(node["gpu"]))
    return shape


def pool_taints(pool: Mapping[str, Any]) -> list[dict[str, str]]:
    return [
        {k: str(t[k]) for k in ("key", "value", "effect") if t.get(k) is not None}
        for t in pool["spec"].get("taints") or []
    ]


def admits_namespace(pool: Mapping[str, Any], namespace: str | None) -> bool:
    """spec.namespaces: which namespaces may use the pool; empty or absent = all of them."""
    allowed = (pool.get("spec") or {}).get("namespaces") or []
    return not allowed or namespace in allowed


def namespace_refusal(pool: Mapping[str, Any], namespace: str) -> str | None:
    """Why `namespace` may not use `pool` (a condition's message), or None when it may."""
    if admits_namespace(pool, namespace):
        return None
    allowed = ", ".join(str(n) for n in pool["spec"]["namespaces"])
    return (
        f"ComputePool {pool['metadata']['name']} does not admit namespace {namespace} "
        f"(its spec.namespaces: {allowed}); ask its administrator or name another pool"
    )
