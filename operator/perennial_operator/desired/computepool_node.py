"""The Node a ComputePool's kwok provider creates. Pure.

Its shape, labels and taints come from api/computepool.py (the scaling decision reads them
too). The same shape as hack/perennial_hack/cluster/nodes.py builds for the local cluster (a
unit test holds the two together); the operator image does not ship hack/, so it is not
imported.
"""

from __future__ import annotations

from typing import Any, Final

from perennial_operator.api.computepool import pool_node_labels, pool_shape, pool_taints
from perennial_operator.api.group import ANNOTATION_COMPUTEPOOL_UID, MANAGED_BY, MANAGED_BY_VALUE

KWOK_ANNOTATION: Final = "kwok.x-k8s.io/node"
KWOK_ANNOTATION_VALUE: Final = "fake"  # what the local kwok's node selector manages
HOSTNAME: Final = "kubernetes.io/hostname"


def node_name(pool_name: str, index: int) -> str:
    return f"{pool_name}-{index}"


def computepool_node(pool: dict[str, Any], name: str) -> dict[str, Any]:
    """A kwok-managed Node of the pool's shape, marked with the pool's uid. Not an
    ownerReference: the garbage collector would delete the nodes the moment the pool is
    deleted in the foreground, before the pool's finalizer drained them (issue 20, f7)."""
    shape = pool_shape(pool)
    taints = pool_taints(pool)
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {
                KWOK_ANNOTATION: KWOK_ANNOTATION_VALUE,
                ANNOTATION_COMPUTEPOOL_UID: pool["metadata"]["uid"],
                "node.alpha.kubernetes.io/ttl": "0",
            },
            "labels": {
                **pool_node_labels(pool),
                HOSTNAME: name,
                MANAGED_BY: MANAGED_BY_VALUE,
            },
        },
        "spec": {"taints": taints} if taints else {},
        "status": {"capacity": dict(shape), "allocatable": dict(shape)},
    }
