"""Cluster API provider: scale a MachineDeployment through its scale subresource.

Cluster API creates and deletes the Machines (and so the Nodes). The operator only sets
replicas, the way cluster-autoscaler's clusterapi provider does:
- it scales only a MachineDeployment labelled perennial.dev/compute-pool=<pool> (opt-in,
  so a typo in spec.provider cannot resize someone else's MachineDeployment), and none that
  cluster-autoscaler also manages (its node-group min/max-size annotations);
- to remove particular nodes it first marks their Machines with
  cluster.x-k8s.io/delete-machine, which Cluster API deletes before any other on
  scale-down, then lowers replicas; a node without a Machine annotation is not removed.
Nodes count as the pool's when they carry perennial.dev/compute-pool=<pool> (set it with
the bootstrap config's kubelet --node-labels, next to the pool's labels and taints).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from perennial_operator.api.group import LABEL_COMPUTEPOOL
from perennial_operator.k8s.kube import KubeApi, get_scale, patch_scale
from perennial_operator.providers.base import ProviderError

CAPI_VERSION: Final = "cluster.x-k8s.io/v1beta1"
MACHINE_ANNOTATION: Final = "cluster.x-k8s.io/machine"
MACHINE_NAMESPACE_ANNOTATION: Final = "cluster.x-k8s.io/cluster-namespace"
DELETE_MACHINE: Final = "cluster.x-k8s.io/delete-machine"
# cluster-autoscaler's clusterapi provider scales a MachineDeployment carrying these: two
# controllers setting one replica count undo each other, so such a one is refused.
AUTOSCALER_BOUNDS: Final = (
    "cluster.x-k8s.io/cluster-api-autoscaler-node-group-min-size",
    "cluster.x-k8s.io/cluster-api-autoscaler-node-group-max-size",
)


class ClusterAPIProvider:
    def __init__(
        self, kube: KubeApi, pool: dict[str, Any], nodes: Sequence[dict[str, Any]]
    ) -> None:
        self.kube, self.pool = kube, pool
        self.name = pool["metadata"]["name"]
        ref = pool["spec"]["provider"]["clusterAPI"]["machineDeployment"]
        self.md_name, self.md_namespace = str(ref["name"]), str(ref["namespace"])

    @property
    def _what(self) -> str:
        return f"MachineDeployment {self.md_namespace}/{self.md_name}"

    def _owned_scale(self) -> dict[str, Any]:
        md = self.kube.get(CAPI_VERSION, "MachineDeployment", self.md_namespace, self.md_name)
        if md is None:
            raise ProviderError(f"{self._what} does not exist")
        labels = md["metadata"].get("labels") or {}
        if labels.get(LABEL_COMPUTEPOOL) != self.name:
            raise ProviderError(
                f"{self._what} is not labelled {LABEL_COMPUTEPOOL}={self.name}; "
                "refusing to scale a MachineDeployment this pool does not own"
            )
        annotations = md["metadata"].get("annotations") or {}
        bounds = [a for a in AUTOSCALER_BOUNDS if a in annotations]
        if bounds:
            raise ProviderError(
                f"{self._what} is also managed by cluster-autoscaler ({', '.join(bounds)}); "
                "refusing to scale it: remove those annotations or the pool"
            )
        scale = get_scale(
            self.kube, CAPI_VERSION, "MachineDeployment", self.md_namespace, self.md_name
        )
        if scale is None:
            raise ProviderError(f"{self._what} has no scale subresource")
        return scale

    def owns(self, node: dict[str, Any]) -> bool:
        return bool((node["metadata"].get("labels") or {}).get(LABEL_COMPUTEPOOL) == self.name)

    def target_size(self) -> int:
        return int((self._owned_scale().get("spec") or {}).get("replicas") or 0)

    def _set_replicas(self, replicas: int) -> None:
        patch_scale(
            self.kube, CAPI_VERSION, "MachineDeployment", self.md_namespace, self.md_name, replicas
        )

    def increase_size(self, delta: int) -> None:
        self._set_replicas(self.target_size() + delta)

    def delete_nodes(self, nodes: Sequence[dict[str, Any]]) -> None:
        current = self.target_size()
        for node in nodes:
            annotations = node["metadata"].get("annotations") or {}
            machine = annotations.get(MACHINE_ANNOTATION)
            if not machine or not self.owns(node):
                raise ProviderError(
                    f"node {node['metadata']['name']} has no {MACHINE_ANNOTATION} annotation "
                    "or is not this pool's; not lowering replicas blind"
                )
            namespace = annotations.get(MACHINE_NAMESPACE_ANNOTATION, self.md_namespace)
            patch = {"metadata": {"annotations": {DELETE_MACHINE: "perennial"}}}
            self.kube.patch(CAPI_VERSION, "Machine", namespace, machine, patch)
        self._set_replicas(max(0, current - len(nodes)))
