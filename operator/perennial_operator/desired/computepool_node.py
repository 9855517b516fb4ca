"""The Node a ComputePool's kwok provider creates, and the labels every pool node carries.

Pure. The same shape as hack/perennial_hack/nodes.py builds for the local cluster (a unit
test holds the two together); the operator image does not ship hack/, so it is not imported.
"""

from __future__ import annotations

from typing import Any, Final

from perennial_operator.api.group import GROUP, LABEL_COMPUTEPOOL, MANAGED_BY, MANAGED_BY_VALUE
from perennial_operator.desired.common import owner_reference

KWOK_ANNOTATION: Final = "kwok.x-k8s.io/node"
KWOK_ANNOTATION_VALUE: Final = "fake"  # what the local kwok's node selector manages
GPU_RESOURCE: Final = "nvidia.com/gpu"
LABEL_GPU_TYPE: Final = f"{GROUP}/gpu-type"
HOSTNAME: Final = "kubernetes.io/hostname"


def pool_node_labels(pool: dict[str, Any]) -> dict[str, str]:
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


def pool_shape(pool: dict[str, Any]) -> dict[str, str]:
    """Capacity of one node as Kubernetes quantities (what kwok reports to the scheduler)."""
    node = pool["spec"]["node"]
    shape = {"cpu": str(node["cpu"]), "memory": str(node["memory"]),
             "pods": str(node.get("pods", 110))}  # fmt: skip
    if int(node.get("gpu") or 0):
        shape[GPU_RESOURCE] = str(int(node["gpu"]))
    return shape


def pool_taints(pool: dict[str, Any]) -> list[dict[str, str]]:
    return [
        {k: str(t[k]) for k in ("key", "value", "effect") if t.get(k) is not None}
        for t in pool["spec"].get("taints") or []
    ]


def node_name(pool_name: str, index: int) -> str:
    return f"{pool_name}-{index}"


def computepool_node(pool: dict[str, Any], name: str) -> dict[str, Any]:
    """A kwok-managed Node of the pool's shape, owned by the pool (cluster-scoped owner of
    a cluster-scoped child), so deleting the pool lets the garbage collector take its nodes."""
    shape = pool_shape(pool)
    taints = pool_taints(pool)
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {
                KWOK_ANNOTATION: KWOK_ANNOTATION_VALUE,
                "node.alpha.kubernetes.io/ttl": "0",
            },  # fmt: skip
            "labels": {
                **pool_node_labels(pool),
                HOSTNAME: name,
                MANAGED_BY: MANAGED_BY_VALUE,
            },  # fmt: skip
            "ownerReferences": [owner_reference(pool)],
        },
        "spec": {"taints": taints} if taints else {},
        "status": {"capacity": dict(shape), "allocatable": dict(shape)},
    }
