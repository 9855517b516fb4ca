"""The unit tests' FakeKube against the real API server: each check runs on both, so what the
fake claims to do like the API server (tests/support/fake_kube.py) is held to it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from perennial_operator.api.group import API_VERSION
from perennial_operator.k8s.errors import AlreadyExists, Conflict, NotFound
from perennial_operator.k8s.kube import Kube, KubeApi, get_scale, patch_scale
from support.fake_kube import FakeKube

pytestmark = pytest.mark.integration


@pytest.fixture(params=["api-server", "fake"])
def api(request: pytest.FixtureRequest) -> Iterator[tuple[KubeApi, str]]:
    """(a KubeApi, a namespace to work in)."""
    if request.param == "fake":
        yield FakeKube(), "ns"
        return
    cluster, namespace = request.getfixturevalue("cluster"), request.getfixturevalue("namespace")
    with cluster.api_client() as client:
        yield Kube(client), namespace


def configmap(ns: str, name: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    meta = {"name": name, "namespace": ns, "labels": labels or {}}
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {"a": "1"}}


def modelversion(ns: str, name: str = "churn-v1") -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "ModelVersion",
        "metadata": {"name": name, "namespace": ns, "labels": {"a": "1", "b": "2"}},
        "spec": {
            "model": "churn",
            "version": 1,
            "stage": "None",
            "artifact": {"uri": "pvc://claim/models/churn/v1", "sha256": "ab" * 32},
        },
        "status": {"phase": "Ready"},
    }


def test_create_fills_metadata_drops_status_and_refuses_a_taken_name(api):
    kube, ns = api
    made = kube.create(modelversion(ns))
    meta = made["metadata"]
    assert meta["uid"] and meta["resourceVersion"] and meta["generation"] == 1
    assert meta["creationTimestamp"]
    assert "status" not in made or not made["status"]
    with pytest.raises(AlreadyExists):
        kube.create(modelversion(ns))
    assert kube.get(API_VERSION, "ModelVersion", ns, "churn-v1")["metadata"]["uid"] == meta["uid"]


def test_what_is_missing(api):
    kube, ns = api
    assert kube.get("v1", "ConfigMap", ns, "nothing") is None
    with pytest.raises(ApiException) as caught:
        kube.patch("v1", "ConfigMap", ns, "nothing", {"data": {"a": "2"}})
    assert caught.value.status == 404
    with pytest.raises(NotFound):
        kube.patch_status(API_VERSION, "ModelVersion", ns, "nothing", {"phase": "Ready"})
    kube.delete("v1", "ConfigMap", ns, "nothing")  # gone already is fine
    assert kube.served_resources("nothing.example.com/v1") is None


def test_merge_patch_generation_and_status(api):
    kube, ns = api
    kube.create(modelversion(ns))
    meta_only = kube.patch(
        API_VERSION, "ModelVersion", ns, "churn-v1", {"metadata": {"labels": {"a": None, "c": "3"}}}
    )
    assert meta_only["metadata"]["labels"] == {"b": "2", "c": "3"}
    assert meta_only["metadata"]["generation"] == 1
    staged = kube.patch(
        API_VERSION,
        "ModelVersion",
        ns,
        "churn-v1",
        {"spec": {"stage": "Staging"}, "status": {"phase": "Ignored"}},
    )
    assert staged["spec"]["stage"] == "Staging" and staged["spec"]["model"] == "churn"
    assert staged["metadata"]["generation"] == 2
    assert (staged.get("status") or {}).get("phase") is None  # status is the subresource's
    kube.patch_status(
        API_VERSION,
        "ModelVersion",
        ns,
        "churn-v1",
        {"phase": "Ready", "rejections": [{"inferenceService": "a"}]},
    )
    status = kube.patch_status(
        API_VERSION, "ModelVersion", ns, "churn-v1", {"rejections": [{"inferenceService": "b"}]}
    )["status"]
    assert status == {"phase": "Ready", "rejections": [{"inferenceService": "b"}]}  # replaced
    again = kube.get(API_VERSION, "ModelVersion", ns, "churn-v1")
    assert again["metadata"]["generation"] == 2 and again["status"] == status


def test_a_status_patch_at_a_version_conflicts_once_the_object_moved_on(api):
    kube, ns = api
    made = kube.create(modelversion(ns))
    at = made["metadata"]["resourceVersion"]
    written = kube.patch_status(
        API_VERSION, "ModelVersion", ns, "churn-v1", {"phase": "Ready"}, resource_version=at
    )
    assert written["status"]["phase"] == "Ready"
    assert written["metadata"]["resourceVersion"] != at
    with pytest.raises(Conflict):  # written since: the version given is stale
        kube.patch_status(
            API_VERSION, "ModelVersion", ns, "churn-v1", {"phase": "Failed"}, resource_version=at
        )
    assert kube.get(API_VERSION, "ModelVersion", ns, "churn-v1")["status"]["phase"] == "Ready"


def test_list_selectors_and_order(api):
    kube, ns = api
    for name, labels in (
        ("c", {"app": "x", "tier": "web"}),
        ("a", {"app": "x"}),
        ("b", {"app": "y"}),
    ):
        kube.create(configmap(ns, name, labels))

    def names(labels: str = "", fields: str = "") -> list[str]:
        found = kube.list("v1", "ConfigMap", ns, labels, fields)
        return [o["metadata"]["name"] for o in found if o["metadata"]["name"] in "abc"]

    assert names() == ["a", "b", "c"]
    assert names("app=x") == ["a", "c"]
    assert names("app==x,tier") == ["c"]
    assert names("app!=x") == ["b"]
    assert names("app,!tier") == ["a", "b"]
    assert names(fields="metadata.name=b") == ["b"]
    assert names("app=x", "metadata.name!=a") == ["c"]


def test_apply_creates_then_updates(api):
    kube, ns = api
    kube.apply(configmap(ns, "applied"))
    changed = configmap(ns, "applied", {"k": "v"})
    changed["data"] = {"a": "2", "b": "3"}
    kube.apply(changed)
    got = kube.get("v1", "ConfigMap", ns, "applied")
    assert got["data"] == {"a": "2", "b": "3"} and got["metadata"]["labels"] == {"k": "v"}


def test_json_patch_applies_guarded_ops_and_refuses_a_failed_test(api):
    kube, ns = api
    kube.create(configmap(ns, "route"))
    ops = [
        {"op": "test", "path": "/data/a", "value": "1"},
        {"op": "replace", "path": "/data/a", "value": "2"},
        {"op": "add", "path": "/data/b", "value": "3"},
    ]
    written = kube.json_patch("v1", "ConfigMap", ns, "route", ops, field_manager="tests")
    assert written["data"] == {"a": "2", "b": "3"}
    with pytest.raises(ApiException) as caught:
        kube.json_patch("v1", "ConfigMap", ns, "route", ops, field_manager="tests")
    assert caught.value.status == 422
    assert kube.get("v1", "ConfigMap", ns, "route")["data"] == {"a": "2", "b": "3"}


def test_the_scale_subresource(api):
    kube, ns = api
    labels = {"app": "scaled"}
    kube.create(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "scaled", "namespace": ns},
            "spec": {
                "replicas": 0,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {"containers": [{"name": "c", "image": "x.invalid/c"}]},
                },
            },
        }
    )
    assert get_scale(kube, "apps/v1", "Deployment", ns, "scaled")["spec"] == {}  # 0 is omitted
    patch_scale(kube, "apps/v1", "Deployment", ns, "scaled", 2)
    assert kube.get("apps/v1", "Deployment", ns, "scaled")["spec"]["replicas"] == 2
    assert get_scale(kube, "apps/v1", "Deployment", ns, "scaled")["spec"]["replicas"] == 2
    assert get_scale(kube, "apps/v1", "Deployment", ns, "missing") is None


def test_nodes_are_cluster_scoped_and_keep_the_status_they_register_with(api):
    kube, ns = api
    name = f"fake-kube-check-{ns}"[:63]
    node = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {"perennial.dev/test": "fake-kube"},
            "annotations": {"kwok.x-k8s.io/node": "fake"},
        },
        "status": {
            "capacity": {"cpu": "1", "pods": "10"},
            "allocatable": {"cpu": "1", "pods": "10"},
        },
    }
    try:
        made = kube.create(node)
        assert made["status"]["capacity"]["cpu"] == "1"
        assert kube.get("v1", "Node", "any-namespace", name) is not None
        found = kube.list("v1", "Node", None, "perennial.dev/test=fake-kube")
        assert name in [n["metadata"]["name"] for n in found]
    finally:
        kube.delete("v1", "Node", None, name)
