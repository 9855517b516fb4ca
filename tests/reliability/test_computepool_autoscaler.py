"""Finding 10 (issue 20): a ComputePool refuses a MachineDeployment that cluster-autoscaler
also manages (its node-group min/max-size annotations): two controllers writing one replica
count undo each other. The pool shows ProviderReady=False with the reason; nothing is
scaled."""

from __future__ import annotations

from typing import Any

import pytest

from perennial_operator.api.group import API_VERSION
from perennial_operator.reconcile.computepool import sync_computepool
from support.fake_kube import FakeKube

pytestmark = pytest.mark.unit

MIN = "cluster.x-k8s.io/cluster-api-autoscaler-node-group-min-size"
MAX = "cluster.x-k8s.io/cluster-api-autoscaler-node-group-max-size"


def pool() -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION, "kind": "ComputePool",
        "metadata": {"name": "p", "uid": "pool-uid"},
        "spec": {"node": {"cpu": "4", "memory": "8Gi"}, "minNodes": 2, "maxNodes": 4,
                 "provider": {"clusterAPI": {"machineDeployment": {"name": "md",
                                                                    "namespace": "capi"}}}},
    }  # fmt: skip


def md(annotations: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "cluster.x-k8s.io/v1beta1", "kind": "MachineDeployment",
        "metadata": {"name": "md", "namespace": "capi", "annotations": annotations,
                     "labels": {"perennial.dev/compute-pool": "p"}},
        "spec": {"replicas": 0},
    }  # fmt: skip


@pytest.mark.parametrize("annotations", [{MIN: "1"}, {MAX: "5"}, {MIN: "0", MAX: "5"}])
def test_a_machinedeployment_cluster_autoscaler_manages_is_refused(annotations):
    kube = FakeKube(pool(), md(annotations))
    sync_computepool(kube, "p")  # minNodes 2 > 0 replicas: it would scale up
    assert not [v for v in kube.verbs() if "MachineDeployment" in v and v.startswith("patch")]
    status = kube.get(API_VERSION, "ComputePool", None, "p")["status"]
    ready = next(c for c in status["conditions"] if c["type"] == "ProviderReady")
    assert ready["status"] == "False"
    assert "cluster-autoscaler" in ready["message"] and next(iter(annotations)) in ready["message"]


def test_without_the_annotations_the_pool_scales_it():
    kube = FakeKube(pool(), md({}))
    sync_computepool(kube, "p")
    assert "patch MachineDeployment/md/scale" in kube.verbs()
