"""Finding 10 (issue 20): a ComputePool's spec.namespaces says which namespaces may use it.
A TrainingJob or InferenceService elsewhere that names the pool is refused with reason
ComputePoolNotAllowed (nothing is started on the pool), and a pod of such a namespace never
counts as the pool's demand. Empty = every namespace."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Gauge

from perennial_operator.api.group import API_VERSION
from perennial_operator.config import OperatorConfig
from perennial_operator.decide.computepool.demand import selects_pool
from perennial_operator.metrics import TrainingJobPhases
from perennial_operator.reconcile.inferenceservice.sync import sync_inferenceservice
from perennial_operator.reconcile.locks import KeyedLocks
from perennial_operator.reconcile.trainingjob import sync_trainingjob
from support.fake_kube import FakeKube

pytestmark = pytest.mark.unit


def pool(namespaces: list[str] | None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "node": {"cpu": "8", "memory": "32Gi", "gpu": 1},
        "labels": {"perennial.dev/pool": "team-a"},
        "minNodes": 0, "maxNodes": 4, "provider": {"kwok": {}},
    }  # fmt: skip
    if namespaces is not None:
        spec["namespaces"] = namespaces
    return {
        "apiVersion": API_VERSION, "kind": "ComputePool",
        "metadata": {"name": "team-a", "uid": "pool-uid"}, "spec": spec,
    }  # fmt: skip


def trainingjob(ns: str) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION, "kind": "TrainingJob",
        "metadata": {"name": "t", "namespace": ns, "uid": f"uid-{ns}"},
        "spec": {"model": "iris", "task": "classification", "algorithm": "random_forest",
                 "dataset": {"uri": "builtin://iris", "target": "target"},
                 "computePool": "team-a"},
    }  # fmt: skip


def condition(obj: dict[str, Any] | None, type_: str) -> dict[str, Any]:
    assert obj is not None
    return next(c for c in obj["status"]["conditions"] if c["type"] == type_)


def sync_tj(kube: FakeKube, ns: str) -> dict[str, Any] | None:
    gauge = Gauge("trainingjobs", "by phase", ["phase"], registry=CollectorRegistry())
    sync_trainingjob(kube, ns, "t", OperatorConfig(), KeyedLocks(), TrainingJobPhases(gauge))
    return kube.get(API_VERSION, "TrainingJob", ns, "t")


def test_a_trainingjob_of_a_namespace_the_pool_does_not_admit_is_refused():
    kube = FakeKube(pool(["team-a"]), trainingjob("team-b"))
    tj = sync_tj(kube, "team-b")
    assert tj is not None and tj["status"]["phase"] == "Pending"
    scheduled = condition(tj, "Scheduled")
    assert (scheduled["status"], scheduled["reason"]) == ("False", "ComputePoolNotAllowed")
    assert "team-b" in scheduled["message"] and "spec.namespaces" in scheduled["message"]
    assert kube.get("batch/v1", "Job", "team-b", "t-train") is None  # nothing on the pool


@pytest.mark.parametrize(("namespaces", "ns"), [(["team-a"], "team-a"), ([], "x"), (None, "x")])
def test_a_listed_namespace_or_an_open_pool_trains_on_it(namespaces, ns):
    kube = FakeKube(pool(namespaces), trainingjob(ns))
    sync_tj(kube, ns)
    job = kube.get("batch/v1", "Job", ns, "t-train")
    assert job is not None
    pod = job["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"perennial.dev/pool": "team-a"}


def modelversion(ns: str) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION, "kind": "ModelVersion",
        "metadata": {"name": "shop-v1", "namespace": ns},
        "spec": {"model": "shop", "version": 1, "stage": "None",
                 "artifact": {"uri": "pvc://claim/models/shop/v1", "sha256": "ab" * 32}},
        "status": {"phase": "Ready"},
    }  # fmt: skip


def inferenceservice(ns: str) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION, "kind": "InferenceService",
        "metadata": {"name": "shop", "namespace": ns, "uid": "uid-shop", "generation": 1},
        "spec": {"model": {"name": "shop", "version": 1}, "replicas": 1,
                 "computePool": "team-a"},
    }  # fmt: skip


def test_an_inferenceservice_of_a_namespace_the_pool_does_not_admit_is_refused():
    kube = FakeKube(pool(["team-a"]), modelversion("team-b"), inferenceservice("team-b"))
    sync_inferenceservice(kube, "team-b", "shop", OperatorConfig(), KeyedLocks())
    isvc = kube.get(API_VERSION, "InferenceService", "team-b", "shop")
    progressing = condition(isvc, "Progressing")
    assert (progressing["status"], progressing["reason"]) == ("False", "ComputePoolNotAllowed")
    assert "team-b" in progressing["message"]
    assert kube.verbs("Deployment") == []  # no serving pod on the pool
    assert "ComputePoolNotAllowed" in kube.reasons()  # a Warning Event says it too


def test_an_admitted_inferenceservice_is_served_on_the_pool():
    kube = FakeKube(pool(["team-a"]), modelversion("team-a"), inferenceservice("team-a"))
    sync_inferenceservice(kube, "team-a", "shop", OperatorConfig(), KeyedLocks())
    stable = kube.get("apps/v1", "Deployment", "team-a", "shop-stable")
    assert stable is not None
    assert stable["spec"]["template"]["spec"]["nodeSelector"] == {"perennial.dev/pool": "team-a"}


def pending_pod(ns: str) -> dict[str, Any]:
    return {
        "metadata": {"name": "p", "namespace": ns},
        "spec": {"nodeSelector": {"perennial.dev/pool": "team-a"},
                 "containers": [{"name": "c", "resources": {"requests": {"cpu": "1"}}}]},
    }  # fmt: skip


def test_a_pod_of_a_namespace_the_pool_does_not_admit_is_not_its_demand():
    assert not selects_pool(pending_pod("team-b"), pool(["team-a"]))
    assert selects_pool(pending_pod("team-a"), pool(["team-a"]))
    assert selects_pool(pending_pod("team-b"), pool([]))
