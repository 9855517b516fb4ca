"""The one interface a ComputePool backend implements.

The scaling logic (decide/computepool/) only says "this pool needs N more nodes" or
"remove these empty, cordoned nodes"; a provider turns that into API calls. The shape
follows cluster-autoscaler's NodeGroup (TargetSize, IncreaseSize, DeleteNodes), so anyone
who has written a cluster-autoscaler cloud provider knows where things go.

Adding a cloud (AKS agent pools, EKS managed node groups, GKE node pools):
1. a module here with a class that takes (kube, pool, nodes) and implements NodeProvider:
   - owns(node): True only for nodes this pool may count and remove (e.g. the node's
     providerID is in the cloud pool, and it carries perennial.dev/compute-pool=<pool>);
   - target_size(): the size the cloud pool was last asked for (AKS `count`, EKS
     `desiredSize`, GKE `initialNodeCount`/instance group target size);
   - increase_size(delta): ask the cloud for `delta` more nodes, return at once (the
     nodes register later; the decision counts target_size - registered as still booting);
   - delete_nodes(nodes): remove exactly these nodes (they are cordoned and carry no
     non-DaemonSet pod), e.g. VMSS delete-instances or EKS terminate-instance with
     decrement; never "shrink by N" and let the cloud pick which ones;
2. register it in PROVIDERS in providers/__init__.py under its key in spec.provider;
3. add the key to crds/src/computepool.yaml (provider: exactly one of ...).
Raise ProviderError with a sentence a person can act on; the reconcile puts it in the
ProviderReady condition and retries with backoff.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol


class ProviderError(Exception):
    """The backend refused or failed; the message goes into the ProviderReady condition."""


class NodeProvider(Protocol):
    def owns(self, node: dict[str, Any]) -> bool:
        """May this pool count and remove this node?"""
        ...

    def target_size(self) -> int:
        """Nodes the backend was last asked for, registered or not."""
        ...

    def increase_size(self, delta: int) -> None:
        """Ask for `delta` more nodes of the pool's shape."""
        ...

    def delete_nodes(self, nodes: Sequence[dict[str, Any]]) -> None:
        """Remove exactly these nodes: cordoned, with no non-DaemonSet pods."""
        ...
