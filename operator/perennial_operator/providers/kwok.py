"""kwok provider: the pool's nodes are Node objects we create; kwok keeps them Ready.

Used by tests and local clusters. A node belongs to the pool only if it carries the pool
label *and* this very ComputePool's uid (annotation perennial.dev/compute-pool-uid; nodes
made before that carry an owner reference with the uid, also accepted), so a pool never
counts or deletes a node someone else made, even one with the same label.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from perennial_operator.api.group import ANNOTATION_COMPUTEPOOL_UID, LABEL_COMPUTEPOOL
from perennial_operator.desired.computepool_node import computepool_node, node_name
from perennial_operator.k8s.errors import AlreadyExists
from perennial_operator.k8s.kube import KubeApi
from perennial_operator.providers.base import ProviderError


class KwokProvider:
    def __init__(
        self, kube: KubeApi, pool: dict[str, Any], nodes: Sequence[dict[str, Any]]
    ) -> None:
        self.kube, self.pool = kube, pool
        self.name, self.uid = pool["metadata"]["name"], pool["metadata"]["uid"]
        self.nodes = list(nodes)

    def owns(self, node: dict[str, Any]) -> bool:
        meta = node.get("metadata") or {}
        if (meta.get("labels") or {}).get(LABEL_COMPUTEPOOL) != self.name:
            return False
        if (meta.get("annotations") or {}).get(ANNOTATION_COMPUTEPOOL_UID) == self.uid:
            return True
        return any(ref.get("uid") == self.uid for ref in meta.get("ownerReferences") or [])

    def target_size(self) -> int:
        return sum(
            1 for n in self.nodes if self.owns(n) and not n["metadata"].get("deletionTimestamp")
        )

    def increase_size(self, delta: int) -> None:
        # Lowest free index first: names stay short and readable (gpu-a100-0, -1, ...).
        # Create, not apply: a name someone else holds must fail, not be taken over.
        taken = {n["metadata"]["name"] for n in self.nodes}
        index, made = 0, 0
        while made < delta:
            if index > len(taken) + delta + 100:
                raise ProviderError(f"no free node name for pool {self.name} near index {index}")
            name = node_name(self.name, index)
            index += 1
            if name in taken:
                continue
            try:
                self.kube.create(computepool_node(self.pool, name))
            except AlreadyExists:
                continue
            made += 1

    def delete_nodes(self, nodes: Sequence[dict[str, Any]]) -> None:
        for node in nodes:
            if not self.owns(node):
                raise ProviderError(f"node {node['metadata']['name']} is not pool {self.name}'s")
            self.kube.delete("v1", "Node", None, node["metadata"]["name"])
