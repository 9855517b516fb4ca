"""Finding 5 (issue 20): the training container (a custom image or command) is not trusted.
Only the Job's own pods count, its termination message is validated before it reaches a
ModelVersion, and a registration the API server refuses fails the TrainingJob with the
API's reason instead of leaving it "registering" forever."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException
from prometheus_client import CollectorRegistry, Gauge

from perennial_operator.api.group import API_VERSION, LABEL_TRAININGJOB_UID
from perennial_operator.config import OperatorConfig
from perennial_operator.metrics import TrainingJobPhases
from perennial_operator.reconcile.locks import KeyedLocks
from perennial_operator.reconcile.trainingjob import sync_trainingjob
from support.fake_kube import FakeKube

pytestmark = pytest.mark.unit

NS, UID, JOB_UID = "ml", "uid-tj", "uid-job"
GOOD = {
    "outcome": "Succeeded",
    "metrics": {"accuracy": 0.9},
    "dataset": {"uri": "builtin://iris", "sha256": "ab" * 32, "rows": 150},
    "artifact": {"format": "onnx", "sha256": "cd" * 32},
    "algorithm": "random_forest",
}


def pod(name: str, message: str, created: str, owner: str | None) -> dict[str, Any]:
    done = {"terminated": {"exitCode": 0, "reason": "Completed", "message": message}}
    meta: dict[str, Any] = {
        "name": name, "namespace": NS, "creationTimestamp": created,
        "labels": {LABEL_TRAININGJOB_UID: UID},
    }  # fmt: skip
    if owner:
        meta["ownerReferences"] = [{"kind": "Job", "uid": owner, "controller": True}]
    return {
        "apiVersion": "v1", "kind": "Pod", "metadata": meta,
        "status": {"phase": "Succeeded",
                   "initContainerStatuses": [{"name": "validate", "state": {
                       "terminated": {"exitCode": 0, "reason": "Completed"}}}],
                   "containerStatuses": [{"name": "train", "state": done}]},
    }  # fmt: skip


def world(result: dict[str, Any] | str, *extra: dict[str, Any]) -> FakeKube:
    message = result if isinstance(result, str) else json.dumps(result)
    tj = {
        "apiVersion": API_VERSION,
        "kind": "TrainingJob",
        "metadata": {"name": "iris-1", "namespace": NS, "uid": UID},
        "spec": {
            "model": "iris",
            "task": "classification",
            "algorithm": "random_forest",
            "image": "example.com/custom:1",
            "command": ["python", "train.py"],
            "dataset": {"uri": "builtin://iris", "target": "target"},
        },
    }
    job = {
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": "iris-1-train", "namespace": NS, "uid": JOB_UID,
                     "ownerReferences": [{"kind": "TrainingJob", "uid": UID, "controller": True}]},
        "status": {"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]},
    }  # fmt: skip
    own = pod("iris-1-train-a", message, "2026-01-01T00:00:00Z", JOB_UID)
    return FakeKube(tj, job, own, *extra)


def sync(kube: FakeKube) -> dict[str, Any]:
    gauge = Gauge("trainingjobs", "by phase", ["phase"], registry=CollectorRegistry())
    sync_trainingjob(kube, NS, "iris-1", OperatorConfig(), KeyedLocks(), TrainingJobPhases(gauge))
    tj = kube.get(API_VERSION, "TrainingJob", NS, "iris-1")
    assert tj is not None
    return dict(tj["status"])


def failed_reason(status: dict[str, Any]) -> str:
    failed = next(c for c in status["conditions"] if c["type"] == "Failed")
    assert failed["status"] == "True"
    return str(failed["reason"])


def test_a_labelled_pod_not_made_by_the_job_cannot_register_its_bytes():
    forged = {**GOOD, "artifact": {"format": "onnx", "sha256": "ee" * 32}}
    impostor = pod("impostor", json.dumps(forged), "2026-01-01T01:00:00Z", owner=None)
    kube = world(GOOD, impostor)
    status = sync(kube)
    assert status["phase"] == "Succeeded"
    mv = kube.get(API_VERSION, "ModelVersion", NS, status["modelVersion"])
    assert mv is not None and mv["spec"]["artifact"]["sha256"] == "cd" * 32


@pytest.mark.parametrize(
    "result",
    [
        {**GOOD, "artifact": {"format": "joblib", "sha256": "cd" * 32}},  # pickle: runs code
        {**GOOD, "artifact": {"format": "exe", "sha256": "cd" * 32}},
        {**GOOD, "metrics": ["accuracy"]},
        {**GOOD, "dataset": {"uri": "x" * 100_000}},
        {**GOOD, "algorithm": {"not": "a string"}},
    ],
    ids=["joblib", "unknown-format", "metrics-list",
         "huge-dataset", "algorithm-object"],
)  # fmt: skip
def test_an_invalid_result_fails_the_trainingjob_and_registers_nothing(result):
    kube = world(result)
    status = sync(kube)
    assert status["phase"] == "Failed"
    assert failed_reason(status) == "ResultInvalid"
    assert kube.list(API_VERSION, "ModelVersion", NS) == []
    assert sync(kube)["phase"] == "Failed"  # sticky, nothing retried


@pytest.mark.parametrize("bad", [float("inf"), float("-inf"), float("nan")])
def test_non_finite_metrics_never_reach_the_modelversion(bad):
    kube = world({**GOOD, "metrics": {"accuracy": 0.9, "loss": bad}})
    status = sync(kube)
    assert status["metrics"] == {"accuracy": 0.9}
    mv = kube.get(API_VERSION, "ModelVersion", NS, status["modelVersion"])
    assert mv is not None and mv["spec"]["metrics"] == {"accuracy": 0.9}
    json.dumps(mv["spec"], allow_nan=False)  # what the API server would accept


def test_a_registration_the_api_server_refuses_fails_with_its_reason():
    kube = world(GOOD)
    body = json.dumps({"kind": "Status", "message": "spec.artifact: Invalid value: no way"})

    def refused() -> Exception:
        exc = ApiException(status=422, reason="Unprocessable Entity")
        exc.body = body
        return exc

    kube.fail("create", "ModelVersion", refused)
    status = sync(kube)
    assert status["phase"] == "Failed"
    assert failed_reason(status) == "RegistrationRefused"
    assert "no way" in status["message"]
    assert "RegistrationRefused" in kube.reasons()
    assert sync(kube)["phase"] == "Failed"  # never stuck, never retried


def test_a_temporary_api_error_still_retries_the_registration():
    kube = world(GOOD)
    kube.fail("create", "ModelVersion", lambda: ApiException(status=503, reason="Unavailable"))
    with pytest.raises(ApiException):
        sync(kube)
