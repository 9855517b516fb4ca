"""Finding 1 (issue 20): the operator never adopts, rewrites or deletes an object it does
not already own. A name collision leaves the user's object as it was and shows up as a
condition with reason NameConflict."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Gauge

from perennial_operator.api.group import API_VERSION
from perennial_operator.config import OperatorConfig
from perennial_operator.metrics import TrainingJobPhases
from perennial_operator.reconcile.inferenceservice.sync import sync_inferenceservice
from perennial_operator.reconcile.locks import KeyedLocks
from perennial_operator.reconcile.trainingjob import sync_trainingjob
from support.fake_kube import FakeKube

pytestmark = pytest.mark.unit

NS = "shop"


def users(kind: str, api_version: str, name: str, **body: Any) -> dict[str, Any]:
    """An object a user made by hand: no owner, their own labels."""
    return {
        "apiVersion": api_version,
        "kind": kind,
        "metadata": {"name": name, "namespace": NS, "labels": {"team": "web"}},
        **body,
    }


def condition(obj: dict[str, Any] | None, type_: str) -> dict[str, Any]:
    assert obj is not None
    conds = (obj.get("status") or {}).get("conditions") or []
    return next(c for c in conds if c["type"] == type_)


def sync_tj(kube: FakeKube, name: str) -> None:
    gauge = Gauge("trainingjobs", "by phase", ["phase"], registry=CollectorRegistry())
    sync_trainingjob(kube, NS, name, OperatorConfig(), KeyedLocks(), TrainingJobPhases(gauge))


def trainingjob(name: str) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION, "kind": "TrainingJob",
        "metadata": {"name": name, "namespace": NS, "uid": f"uid-{name}"},
        "spec": {"model": "iris", "task": "classification", "algorithm": "random_forest",
                 "dataset": {"uri": "builtin://iris", "target": "target"}},
    }  # fmt: skip


def test_a_users_configmap_is_not_adopted_by_a_trainingjob_of_the_matching_name():
    mine = users("ConfigMap", "v1", "victim-spec", data={"keep": "me"})
    kube = FakeKube(trainingjob("victim"), mine)
    sync_tj(kube, "victim")
    cm = kube.get("v1", "ConfigMap", NS, "victim-spec")
    assert cm is not None and cm["data"] == {"keep": "me"}
    assert not cm["metadata"].get("ownerReferences")  # not adopted: GC would delete it
    assert kube.get("batch/v1", "Job", NS, "victim-train") is None  # nothing started
    scheduled = condition(kube.get(API_VERSION, "TrainingJob", NS, "victim"), "Scheduled")
    assert (scheduled["status"], scheduled["reason"]) == ("False", "NameConflict")
    assert "ConfigMap victim-spec" in scheduled["message"]


def test_a_users_job_of_the_matching_name_is_not_taken_for_the_trainingjobs():
    done = {"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]}
    job = users("Job", "batch/v1", "victim-train", status=done)
    kube = FakeKube(trainingjob("victim"), job)
    sync_tj(kube, "victim")
    tj = kube.get(API_VERSION, "TrainingJob", NS, "victim")
    assert tj is not None and tj["status"]["phase"] == "Pending"
    assert condition(tj, "Scheduled")["reason"] == "NameConflict"
    assert kube.list(API_VERSION, "ModelVersion", NS) == []


def modelversion() -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION, "kind": "ModelVersion",
        "metadata": {"name": "shop-model-v1", "namespace": NS},
        "spec": {"model": "shop-model", "version": 1, "stage": "None",
                 "artifact": {"uri": "pvc://claim/models/shop/v1", "sha256": "ab" * 32}},
        "status": {"phase": "Ready"},
    }  # fmt: skip


def inferenceservice(name: str) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION, "kind": "InferenceService",
        "metadata": {"name": name, "namespace": NS, "uid": f"uid-{name}", "generation": 1},
        "spec": {"model": {"name": "shop-model", "version": 1}, "replicas": 1},
    }  # fmt: skip


def sync_isvc(kube: FakeKube, name: str) -> None:
    sync_inferenceservice(kube, NS, name, OperatorConfig(), KeyedLocks())


@pytest.mark.parametrize(
    ("kind", "api_version", "child"),
    [
        ("Deployment", "apps/v1", "shop-canary"),
        ("Deployment", "apps/v1", "shop-stable"),
        ("Service", "v1", "shop"),
        ("HorizontalPodAutoscaler", "autoscaling/v2", "shop"),
    ],
)
def test_an_inferenceservice_never_rewrites_nor_deletes_a_users_object(kind, api_version, child):
    mine = users(kind, api_version, child, spec={"replicas": 3, "note": "the user's"})
    kube = FakeKube(inferenceservice("shop"), modelversion(), mine)
    for _ in range(3):
        sync_isvc(kube, "shop")
    kept = kube.get(api_version, kind, NS, child)
    assert kept is not None, f"the user's {kind} {child} was deleted"
    assert kept["spec"] == {"replicas": 3, "note": "the user's"}
    assert not kept["metadata"].get("ownerReferences")
    assert not [w for w in kube.verbs(kind) if w.endswith(f"{kind}/{child}")]
    ready = condition(kube.get(API_VERSION, "InferenceService", NS, "shop"), "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "NameConflict")
    assert f"{kind} {child}" in ready["message"]
    assert "NameConflict" in kube.reasons()


def test_an_inferenceservice_named_kubernetes_leaves_the_api_service_alone():
    api = {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "kubernetes", "namespace": NS},
        "spec": {"ports": [{"port": 443}], "clusterIP": "10.0.0.1"},
    }  # fmt: skip
    kube = FakeKube(inferenceservice("kubernetes"), modelversion(), api)
    sync_isvc(kube, "kubernetes")
    assert (
        kube.get("v1", "Service", NS, "kubernetes") == kube.objects[("Service", NS, "kubernetes")]
    )
    assert kube.verbs("Service") == []
    assert kube.verbs("Deployment") == []  # a conflict holds every write of the service


def test_children_it_owns_are_still_applied():
    kube = FakeKube(inferenceservice("shop"), modelversion())
    sync_isvc(kube, "shop")
    dep = kube.get("apps/v1", "Deployment", NS, "shop-stable")
    assert dep is not None and dep["metadata"]["ownerReferences"][0]["uid"] == "uid-shop"
    sync_isvc(kube, "shop")  # its own children are no conflict on the next tick
    ready = condition(kube.get(API_VERSION, "InferenceService", NS, "shop"), "Ready")
    assert ready["reason"] != "NameConflict"
