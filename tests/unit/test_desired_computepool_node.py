"""The kwok provider's Node matches the local cluster's node builder where it matters."""

from __future__ import annotations

import pytest

from perennial_hack.cluster.nodes import node_manifest
from perennial_operator.api.computepool import pool_node_labels
from perennial_operator.api.group import LABEL_GPU_TYPE
from perennial_operator.desired.computepool_node import computepool_node
from perennial_operator.desired.placement import pool_placement

pytestmark = pytest.mark.unit

TAINT = {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}
POOL = {
    "apiVersion": "perennial.dev/v1alpha1",
    "kind": "ComputePool",
    "metadata": {"name": "gpu-a100", "uid": "u-1"},
    "spec": {
        "node": {"cpu": "16", "memory": "64Gi", "gpu": 4, "gpuType": "a100", "pods": 20},
        "labels": {"perennial.dev/pool": "gpu"},
        "taints": [TAINT],
        "minNodes": 0,
        "maxNodes": 2,
        "provider": {"kwok": {}},
    },
}


def test_node_matches_hack_node_manifest_on_what_kwok_and_the_scheduler_read():
    ours = computepool_node(POOL, "gpu-a100-0")
    theirs = node_manifest(
        "gpu-a100-0",
        cpu="16",
        memory="64Gi",
        gpu=4,
        pods=20,
        labels=pool_node_labels(POOL),
        taints=[TAINT],
    )
    assert ours["status"] == theirs["status"]
    assert ours["spec"] == theirs["spec"]
    theirs_annotations = theirs["metadata"]["annotations"]
    assert theirs_annotations.items() <= ours["metadata"]["annotations"].items()
    assert theirs["metadata"]["labels"].items() <= ours["metadata"]["labels"].items()


def test_node_carries_pool_labels_and_the_pool_uid_but_no_owner_reference():
    node = computepool_node(POOL, "gpu-a100-0")
    labels = node["metadata"]["labels"]
    assert labels["perennial.dev/compute-pool"] == "gpu-a100"
    assert labels["perennial.dev/pool"] == "gpu"
    assert labels[LABEL_GPU_TYPE] == "a100"
    assert labels["app.kubernetes.io/managed-by"] == "perennial"
    assert node["metadata"]["annotations"]["perennial.dev/compute-pool-uid"] == "u-1"
    # No ownerReference: a foreground deletion of the pool would let the garbage collector
    # delete the nodes before the pool's finalizer drained them (issue 20, finding 7).
    assert "ownerReferences" not in node["metadata"]
    assert node["status"]["capacity"]["nvidia.com/gpu"] == "4"


def test_pods_placed_by_pool_placement_fit_the_pool_nodes():
    placement = pool_placement(POOL)
    labels = computepool_node(POOL, "gpu-a100-0")["metadata"]["labels"]
    assert placement.node_selector.items() <= labels.items()
    assert [(t["key"], t.get("value"), t["effect"]) for t in placement.tolerations] == [
        (TAINT["key"], TAINT["value"], TAINT["effect"])
    ]


def test_cpu_pool_has_no_gpu_capacity_and_no_taints():
    pool = {**POOL, "spec": {**POOL["spec"], "node": {"cpu": 4, "memory": "8Gi"}, "taints": []}}
    node = computepool_node(pool, "cpu-0")
    assert node["status"]["capacity"] == {"cpu": "4", "memory": "8Gi", "pods": "110"}
    assert node["spec"] == {}
    assert LABEL_GPU_TYPE not in node["metadata"]["labels"]


def test_a_pod_with_the_pool_placement_selects_the_pool():
    from perennial_operator.decide.computepool.demand import selects_pool

    placement = pool_placement(POOL)
    pod = {"spec": {"nodeSelector": placement.node_selector, "tolerations": placement.tolerations}}
    assert selects_pool(pod, POOL)
    assert not selects_pool({"spec": {"nodeSelector": placement.node_selector}}, POOL)
