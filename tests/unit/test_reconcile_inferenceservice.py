"""The InferenceService reconcile against the in-memory FakeKube: which writes it makes, and
in which order, where the order is what keeps a crash safe."""

from __future__ import annotations

import time
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from perennial_operator.api.group import API_VERSION
from perennial_operator.api.rejections import rejected_by, rejections_of
from perennial_operator.api.timestamps import format_time
from perennial_operator.config import OperatorConfig
from perennial_operator.reconcile.inferenceservice.sync import sync_inferenceservice
from perennial_operator.reconcile.locks import KeyedLocks
from support.fake_kube import FakeKube

pytestmark = pytest.mark.unit

NS = "ml"
GATEWAY = "gateway.networking.k8s.io/v1"
ISVC_UID = "0f6b2c1e-0000-4000-8000-0000000000aa"


def modelversion(version: int) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "ModelVersion",
        "metadata": {"name": f"churn-v{version}", "namespace": NS},
        "spec": {
            "model": "churn",
            "version": version,
            "stage": "None",
            "artifact": {
                "uri": f"pvc://claim/models/churn/v{version}",
                "sha256": f"{version:02d}" * 32,
            },
        },
        "status": {"phase": "Ready"},
    }


def deployment(track: str, version: int, replicas: int, ready: int) -> dict[str, Any]:
    labels = {"perennial.dev/model-version": str(version)}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": f"churn-{track}",
            "namespace": NS,
            "generation": 1,
            "ownerReferences": [{"uid": ISVC_UID, "controller": True}],
        },
        "spec": {"replicas": replicas, "template": {"metadata": {"labels": labels}}},
        "status": {
            "observedGeneration": 1,
            "replicas": replicas,
            "updatedReplicas": replicas,
            "readyReplicas": ready,
            "availableReplicas": ready,
        },
    }


def service(rollout: dict[str, Any], status: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "InferenceService",
        "metadata": {"name": "churn", "namespace": NS, "generation": 2, "uid": ISVC_UID},
        "spec": {"model": {"name": "churn", "version": 2}, "replicas": 2, "rollout": rollout},
        "status": status,
    }


def canary_in_flight(started: float) -> dict[str, Any]:
    """v1 serves; v2's canary is at step 1 of [50, 100] since `started`, its pods not ready."""
    canary = {
        "version": 2,
        "modelVersion": "churn-v2",
        "step": 0,
        "weight": 50,
        "stepStartedAt": format_time(started),
    }
    return {
        "currentVersion": 1,
        "currentModelVersion": "churn-v1",
        "canary": canary,
        "phase": "Progressing",
        "conditions": [],
    }


CANARY = {"strategy": "Canary", "steps": [50, 100], "stepSeconds": 60, "readyDeadlineSeconds": 300}


def world(rollout: dict[str, Any] = CANARY, *extra: dict[str, Any], served=None) -> FakeKube:
    long_ago = time.time() - 3600  # the canary's readyDeadlineSeconds ran out long ago
    return FakeKube(
        service(rollout, canary_in_flight(long_ago)),
        modelversion(1),
        modelversion(2),
        deployment("stable", 1, 2, 2),
        deployment("canary", 2, 1, 0),
        *extra,
        served=served,
    )


def settle(kube: FakeKube) -> None:
    """The Deployment controller and kubelets' part: every Deployment rolled out and ready."""
    for dep in kube.list("apps/v1", "Deployment", NS):
        replicas, meta = dep["spec"]["replicas"], dep["metadata"]
        kube.patch_status(
            "apps/v1",
            "Deployment",
            NS,
            meta["name"],
            {
                "observedGeneration": meta["generation"],
                "replicas": replicas,
                "updatedReplicas": replicas,
                "readyReplicas": replicas,
                "availableReplicas": replicas,
            },
        )


def sync(kube: FakeKube) -> None:
    sync_inferenceservice(kube, NS, "churn", OperatorConfig(), KeyedLocks())


def test_a_rollback_is_recorded_on_the_modelversion_before_any_deployment_changes():
    kube = world()
    sync(kube)
    writes = kube.verbs()
    rejected = writes.index("patch ModelVersion/churn-v2")
    assert rejected < writes.index("apply Deployment/churn-stable")
    assert rejected < writes.index("delete Deployment/churn-canary")
    assert "patch_status ModelVersion/churn-v2" not in writes  # status is not where it lives
    mv = kube.get(API_VERSION, "ModelVersion", NS, "churn-v2")
    rejections = rejections_of(mv)
    assert [(r.service, r.reason, r.retried) for r in rejections] == [
        ("churn", "ReadyDeadlineExceeded", False)
    ]
    assert list(mv["metadata"]["annotations"]) == ["rejected.perennial.dev/churn"]
    # Events before the status that moves past them.
    assert writes.index("event InferenceService/churn") < writes.index(
        "patch_status InferenceService/churn"
    )
    assert "RolledBack" in kube.reasons()
    status = kube.get(API_VERSION, "InferenceService", NS, "churn")["status"]
    assert status["lastRollback"]["version"] == 2 and "canary" not in status


def test_a_crash_after_the_rejection_never_rolls_the_version_out_again():
    kube = world()
    kube.fail("delete", "Deployment", lambda: ApiException(status=500, reason="crash"))
    with pytest.raises(ApiException):
        sync(kube)
    assert rejected_by(kube.get(API_VERSION, "ModelVersion", NS, "churn-v2"), "churn")
    assert kube.get(API_VERSION, "InferenceService", NS, "churn")["status"]["canary"]
    kube = FakeKube(*kube.objects.values())  # the operator restarts: no injected failure
    sync(kube)
    assert kube.get("apps/v1", "Deployment", NS, "churn-canary") is None
    assert "apply Deployment/churn-canary" not in kube.verbs()
    status = kube.get(API_VERSION, "InferenceService", NS, "churn")["status"]
    assert status["currentVersion"] == 1 and "canary" not in status
    resolved = next(c for c in status["conditions"] if c["type"] == "ModelResolved")
    assert (resolved["status"], resolved["reason"]) == ("False", "ModelVersionRejected")


def route() -> dict[str, Any]:
    refs = [
        {"group": "", "kind": "Service", "name": "churn-stable", "port": 80, "weight": 50},
        {"group": "", "kind": "Service", "name": "churn-canary", "port": 80, "weight": 50},
    ]
    return {
        "apiVersion": GATEWAY,
        "kind": "HTTPRoute",
        "metadata": {"name": "churn", "namespace": NS},
        "spec": {"rules": [{"backendRefs": refs}]},
    }


def test_with_a_route_the_weights_leave_the_canary_before_its_deployment_goes():
    routed = {**CANARY, "httpRoute": {"name": "churn"}}
    kube = world(routed, route(), served={GATEWAY: ["httproutes"]})
    sync(kube)
    writes = kube.verbs()
    assert writes.index("patch ModelVersion/churn-v2") < writes.index("json_patch HTTPRoute/churn")
    assert writes.index("json_patch HTTPRoute/churn") < writes.index(
        "delete Deployment/churn-canary"
    )
    refs = kube.get(GATEWAY, "HTTPRoute", NS, "churn")["spec"]["rules"][0]["backendRefs"]
    assert [(r["name"], r["weight"]) for r in refs] == [("churn-stable", 100)]


def test_the_route_is_read_before_the_decision_and_a_failed_write_holds_the_step_clock():
    """Nothing is written before `advance` decides: the route is read, its weights written
    after. A write that failed (recorded in TrafficRouted) holds the canary's step clock on
    the next tick even where the route reads as the step wants; the clock starts on the tick
    after one that found the route right."""
    routed = {**CANARY, "httpRoute": {"name": "churn"}}
    fresh = service(
        routed,
        {
            "currentVersion": 1,
            "currentModelVersion": "churn-v1",
            "phase": "Ready",
            "conditions": [],
        },
    )
    kube = FakeKube(
        fresh,
        modelversion(1),
        modelversion(2),
        deployment("stable", 1, 2, 2),
        route(),
        served={GATEWAY: ["httproutes"]},
    )
    kube.fail("json_patch", "HTTPRoute", lambda: ApiException(status=403, reason="Forbidden"))

    def status() -> dict[str, Any]:
        return kube.get(API_VERSION, "InferenceService", NS, "churn")["status"]

    def traffic_routed() -> tuple[str, str]:
        cond = next(c for c in status()["conditions"] if c["type"] == "TrafficRouted")
        return cond["status"], cond["reason"]

    sync(kube)  # the canary starts; its weights (canary 0 while unready) cannot be written
    assert status()["canary"]["step"] == 0
    assert traffic_routed() == ("False", "HTTPRouteForbidden")
    assert "json_patch HTTPRoute/churn" not in kube.verbs()
    settle(kube)  # the canary is ready at the step's size; the route reads 50/50 as it wants
    sync(kube)
    assert "servingSince" not in status()["canary"]  # held by the last tick's failed write
    assert traffic_routed() == ("True", "WeightsApplied")  # nothing to write this time
    settle(kube)
    sync(kube)
    assert status()["canary"]["servingSince"] and status()["canary"]["step"] == 0
    assert kube.reasons().count("HTTPRouteForbidden") == 1
