"""kwok node manifests: the shape the scheduler will see."""

from __future__ import annotations

import pytest

from perennial_hack.cluster.nodes import GPU_RESOURCE, KWOK_TAINT, create_node, node_manifest

pytestmark = pytest.mark.unit


def test_a_cpu_node_is_kwok_managed_and_untainted():
    node = node_manifest("n0", cpu=8, memory="32Gi")
    assert node["metadata"]["annotations"]["kwok.x-k8s.io/node"] == "fake"
    assert node["metadata"]["labels"]["kubernetes.io/hostname"] == "n0"
    assert node["status"]["capacity"] == {"cpu": "8", "memory": "32Gi", "pods": "110"}
    assert node["status"]["allocatable"] == node["status"]["capacity"]
    assert node["spec"] == {}


def test_a_gpu_node_carries_gpus_labels_and_taints():
    taint = {"key": GPU_RESOURCE, "value": "present", "effect": "NoSchedule"}
    node = node_manifest(
        "g0", cpu="16", memory="64Gi", gpu=4, labels={"pool": "a100"}, taints=[taint], pods=20
    )
    assert node["status"]["capacity"][GPU_RESOURCE] == "4"
    assert node["status"]["capacity"]["pods"] == "20"
    assert node["metadata"]["labels"]["pool"] == "a100"
    assert node["spec"]["taints"] == [taint]


def test_caller_labels_win_over_defaults():
    node = node_manifest("n0", cpu=1, memory="1Gi", labels={"type": "gpu-pool"})
    assert node["metadata"]["labels"]["type"] == "gpu-pool"


def test_create_node_posts_the_manifest():
    class Api:
        body: dict | None = None

        def create_node(self, body):
            self.body = body
            return "created"

    api = Api()
    assert create_node(api, "n1", cpu=2, memory="4Gi", taints=[KWOK_TAINT]) == "created"
    assert api.body == node_manifest("n1", cpu=2, memory="4Gi", taints=[KWOK_TAINT])
