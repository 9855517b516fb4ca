"""kwok-managed fake Nodes of a given shape.

`node_manifest` is pure (a dict in, a dict out) so the ComputePool kwok provider can build
the same Nodes without importing anything about the local cluster.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

KWOK_ANNOTATION = "kwok.x-k8s.io/node"
KWOK_ANNOTATION_VALUE = "fake"  # matches kwok's --manage-nodes-with-annotation-selector
GPU_RESOURCE = "nvidia.com/gpu"
KWOK_TAINT = {"key": KWOK_ANNOTATION, "value": KWOK_ANNOTATION_VALUE, "effect": "NoSchedule"}


def node_manifest(
    name: str,
    *,
    cpu: str | int,
    memory: str,
    gpu: int = 0,
    labels: Mapping[str, str] | None = None,
    taints: Sequence[Mapping[str, str]] = (),
    pods: int = 110,
) -> dict[str, Any]:
    """A Node that kwok keeps Ready, with status capacity = allocatable = the given shape.

    kwok's node-initialize stage keeps the capacity we set, so the real scheduler sees it.
    Taints are exactly what the caller passes: a pool that should only take its own pods
    adds its own taint (or KWOK_TAINT).
    """
    shape: dict[str, str] = {"cpu": str(cpu), "memory": memory, "pods": str(pods)}
    if gpu:
        shape[GPU_RESOURCE] = str(gpu)
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {
                KWOK_ANNOTATION: KWOK_ANNOTATION_VALUE,
                "node.alpha.kubernetes.io/ttl": "0",
            },
            "labels": {
                "type": "kwok",
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                **(labels or {}),
            },
        },
        "spec": {"taints": [dict(t) for t in taints]} if taints else {},
        "status": {"capacity": dict(shape), "allocatable": dict(shape)},
    }


class NodeCreator(Protocol):
    """What create_node needs: kubernetes.client.CoreV1Api has this method."""

    def create_node(self, body: Any) -> Any: ...


def create_node(
    api: NodeCreator,
    name: str,
    *,
    cpu: str | int,
    memory: str,
    gpu: int = 0,
    labels: Mapping[str, str] | None = None,
    taints: Sequence[Mapping[str, str]] = (),
    pods: int = 110,
) -> Any:
    body = node_manifest(
        name, cpu=cpu, memory=memory, gpu=gpu, labels=labels, taints=taints, pods=pods
    )
    return api.create_node(body)
