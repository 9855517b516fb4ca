"""Finding 10 (issue 20), the pure parts: a pvc:// artifact URI cannot climb out of its
claim, training pods get no Service environment variables (service links), and a pod on a
GPU pool gets a GPU only when its own spec asks. (The RBAC half, on the real control plane:
test_operator_rbac.py.)"""

from __future__ import annotations

from typing import Any

import pytest

from perennial_operator.api.group import API_VERSION
from perennial_operator.api.tracks import STABLE
from perennial_operator.config import OperatorConfig
from perennial_operator.decide.modelversion.status import modelversion_status
from perennial_operator.desired.inferenceservice import deployment
from perennial_operator.desired.placement import NO_POOL, pool_placement
from perennial_operator.desired.trainingjob import job

pytestmark = pytest.mark.unit

NOW = "2026-01-01T00:00:00Z"


def modelversion(uri: str) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION, "kind": "ModelVersion",
        "metadata": {"name": "iris-v1", "namespace": "ml", "generation": 1},
        "spec": {"model": "iris", "version": 1, "artifact": {"uri": uri, "sha256": "ab" * 32}},
    }  # fmt: skip


@pytest.mark.parametrize(
    "uri",
    [
        "pvc://../../etc",
        "pvc://..",
        "pvc://claim/../other-claim/models",
        "pvc://claim/models/../../x",
        "pvc://claim//etc",
        "pvc:///etc/passwd",
        "pvc://Claim_With_Caps/x",
        "pvc://claim/./x",
    ],
)
def test_a_pvc_uri_that_leaves_its_claim_is_refused(uri):
    status = modelversion_status(modelversion(uri), NOW)
    assert status["phase"] == "Failed"
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "InvalidReference")


@pytest.mark.parametrize("uri", ["pvc://perennial-artifacts/models/iris/1", "pvc://claim"])
def test_a_plain_pvc_uri_is_still_ready(uri):
    assert modelversion_status(modelversion(uri), NOW)["phase"] == "Ready"


def test_training_pods_get_no_service_links():
    tj = {
        "apiVersion": API_VERSION, "kind": "TrainingJob",
        "metadata": {"name": "t", "namespace": "ml", "uid": "u"},
        "spec": {"model": "iris", "task": "classification",
                 "dataset": {"uri": "builtin://iris", "target": "target"}},
    }  # fmt: skip
    spec = job(tj, OperatorConfig(), NO_POOL, None)["spec"]["template"]["spec"]
    # Service links put every Service of the namespace into the environment of code the
    # user may supply (a custom image): no more than the serving pods get.
    assert spec["enableServiceLinks"] is False


GPU_POOL = {
    "metadata": {"name": "gpu-a100"},
    "spec": {
        "node": {"cpu": "32", "memory": "256Gi", "gpu": 4, "gpuType": "a100"},
        "labels": {"perennial.dev/pool": "gpu-a100"},
        "taints": [{"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}],
    },
}


def training_resources(gpu: int | None) -> dict[str, Any]:
    resources: dict[str, Any] = {"cpu": "1", "memory": "1Gi"}
    if gpu is not None:
        resources["gpu"] = gpu
    tj = {
        "apiVersion": API_VERSION, "kind": "TrainingJob",
        "metadata": {"name": "t", "namespace": "ml", "uid": "u"},
        "spec": {"model": "iris", "task": "classification", "resources": resources,
                 "computePool": "gpu-a100",
                 "dataset": {"uri": "builtin://iris", "target": "target"}},
    }  # fmt: skip
    spec = job(tj, OperatorConfig(), pool_placement(GPU_POOL), None)["spec"]["template"]["spec"]
    assert spec["nodeSelector"] == {"perennial.dev/pool": "gpu-a100"}  # still on the pool
    return dict(spec["containers"][0]["resources"])


def serving_resources(gpu: int) -> dict[str, Any]:
    isvc = {
        "apiVersion": API_VERSION, "kind": "InferenceService",
        "metadata": {"name": "churn", "namespace": "ml", "uid": "u-1", "generation": 1},
        "spec": {"model": {"name": "churn", "stage": "Production"}, "replicas": 1,
                 "computePool": "gpu-a100",
                 "resources": {"cpu": "250m", "memory": "256Mi", "gpu": gpu}},
    }  # fmt: skip
    mv = {
        "metadata": {"name": "churn-v1"},
        "spec": {"model": "churn", "version": 1,
                 "artifact": {"uri": "pvc://artifacts/models/churn/x", "sha256": "ab" * 32}},
    }  # fmt: skip
    d = deployment(isvc, STABLE, mv, 1, OperatorConfig(), pool_placement(GPU_POOL))
    pod = d["spec"]["template"]["spec"]
    assert pod["tolerations"][0]["key"] == "nvidia.com/gpu"  # may land on the pool's nodes
    return dict(pod["containers"][0]["resources"])


@pytest.mark.parametrize("gpu", [None, 0])
def test_a_training_pod_on_a_gpu_pool_that_asks_for_none_gets_none(gpu):
    resources = training_resources(gpu)
    assert "nvidia.com/gpu" not in resources.get("requests", {})
    assert "nvidia.com/gpu" not in resources.get("limits", {})


def test_a_training_pod_gets_the_gpus_it_asks_for():
    resources = training_resources(2)
    assert resources["requests"]["nvidia.com/gpu"] == "2"
    assert resources["limits"]["nvidia.com/gpu"] == "2"


def test_a_serving_pod_on_a_gpu_pool_that_asks_for_none_gets_none():
    resources = serving_resources(0)
    assert "nvidia.com/gpu" not in resources.get("requests", {})
    assert "nvidia.com/gpu" not in resources.get("limits", {})


def test_a_serving_pod_gets_the_gpu_it_asks_for():
    assert serving_resources(1)["limits"]["nvidia.com/gpu"] == "1"
