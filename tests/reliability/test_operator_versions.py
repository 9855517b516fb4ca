"""Finding 6 (issue 20): a version number is never reused. Deleting <model>-v2 and training
again must register v3, not a different v2 that a service pinned to 2 would silently roll to."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Gauge

from perennial_operator.api.group import API_VERSION
from perennial_operator.config import OperatorConfig
from perennial_operator.metrics import TrainingJobPhases
from perennial_operator.reconcile.locks import KeyedLocks
from perennial_operator.reconcile.modelversion import sync_modelversion
from perennial_operator.reconcile.trainingjob import sync_trainingjob
from support.fake_kube import FakeKube
from support.trainingjob_objects import NS, finished_job, trainingjob

pytestmark = pytest.mark.unit


def finished_trainingjob(name: str) -> list[dict[str, Any]]:
    uid = f"00000000-0000-4000-8000-{abs(hash(name)) % 10**12:012d}"
    return [trainingjob(name, uid, model="iris"), *finished_job(name, uid)]


def train(kube: FakeKube, name: str) -> str:
    for obj in finished_trainingjob(name):
        kube.put(obj)
    gauge = Gauge("trainingjobs", "by phase", ["phase"], registry=CollectorRegistry())
    sync_trainingjob(kube, NS, name, OperatorConfig(), KeyedLocks(), TrainingJobPhases(gauge))
    status = kube.get(API_VERSION, "TrainingJob", NS, name)["status"]  # type: ignore[index]
    return str(status["modelVersion"])


def test_a_deleted_version_number_is_never_registered_again():
    kube = FakeKube()
    assert [train(kube, "iris-1"), train(kube, "iris-2")] == ["iris-v1", "iris-v2"]
    kube.delete(API_VERSION, "ModelVersion", NS, "iris-v2")
    assert train(kube, "iris-3") == "iris-v3"
    kube.delete(API_VERSION, "ModelVersion", NS, "iris-v1")
    kube.delete(API_VERSION, "ModelVersion", NS, "iris-v3")
    assert train(kube, "iris-4") == "iris-v4"  # every version gone: still no reuse


def test_a_version_created_by_hand_raises_the_mark_too():
    """A ModelVersion applied by a user (or registered just before an operator crash) is
    seen by the ModelVersion handler, which raises the mark before anything deletes it."""
    kube = FakeKube()
    mv = {
        "apiVersion": API_VERSION, "kind": "ModelVersion",
        "metadata": {"name": "iris-v7", "namespace": NS},
        "spec": {"model": "iris", "version": 7,
                 "artifact": {"uri": "pvc://perennial-artifacts/iris/7", "format": "onnx"}},
    }  # fmt: skip
    sync_modelversion(kube, kube.put(mv))
    kube.delete(API_VERSION, "ModelVersion", NS, "iris-v7")
    assert train(kube, "iris-8") == "iris-v8"
