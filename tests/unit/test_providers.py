"""Providers against a recording fake of Kube: which calls each makes, and what it refuses."""

from __future__ import annotations

from typing import Any

import pytest

from perennial_operator.k8s.errors import AlreadyExists
from perennial_operator.providers import ProviderError, provider_for
from perennial_operator.providers.clusterapi import DELETE_MACHINE, ClusterAPIProvider
from perennial_operator.providers.kwok import KwokProvider

pytestmark = pytest.mark.unit


class FakeKube:
    def __init__(self, objects: dict[tuple[str, str | None, str], dict[str, Any]] | None = None):
        self.objects = objects or {}
        self.calls: list[tuple[Any, ...]] = []

    def get(self, api_version, kind, namespace, name):
        return self.objects.get((kind, namespace, name))

    def get_scale(self, api_version, kind, namespace, name):
        obj = self.objects.get((kind, namespace, name))
        return obj and {"spec": {"replicas": obj["spec"].get("replicas", 0)}}

    def patch_scale(self, api_version, kind, namespace, name, replicas):
        self.calls.append(("scale", name, replicas))
        self.objects[(kind, namespace, name)]["spec"]["replicas"] = replicas

    def patch(self, api_version, kind, namespace, name, patch):
        self.calls.append(("patch", kind, namespace, name, patch))

    def create(self, manifest):
        name = manifest["metadata"]["name"]
        if ("Node", None, name) in self.objects:
            raise AlreadyExists(name)
        self.objects[("Node", None, name)] = manifest
        self.calls.append(("create", name))

    def delete(self, api_version, kind, namespace, name):
        self.calls.append(("delete", kind, name))


def kwok_pool():
    return {
        "apiVersion": "perennial.dev/v1alpha1",
        "kind": "ComputePool",
        "metadata": {"name": "p", "uid": "uid-p"},
        "spec": {"node": {"cpu": "4", "memory": "8Gi"}, "provider": {"kwok": {}}},
    }


def node(name, pool="p", uid="uid-p", annotations=None):
    refs = [{"kind": "ComputePool", "name": pool, "uid": uid}] if uid else []
    return {
        "metadata": {
            "name": name,
            "labels": {"perennial.dev/compute-pool": pool},
            "ownerReferences": refs,
            "annotations": annotations or {},
        }
    }


def test_kwok_owns_only_nodes_with_its_label_and_its_uid():
    provider = KwokProvider(FakeKube(), kwok_pool(), [])
    assert provider.owns(node("a"))
    assert not provider.owns(node("b", uid="someone-else"))
    assert not provider.owns(node("c", uid=None))
    assert not provider.owns(node("d", pool="q"))


def test_kwok_counts_its_nodes_and_fills_the_lowest_free_names():
    nodes = [node("p-0"), node("p-2"), node("stranger", uid="x")]
    kube = FakeKube({("Node", None, "p-1"): node("p-1", uid="x")})  # taken by someone else
    provider = KwokProvider(kube, kwok_pool(), nodes)
    assert provider.target_size() == 2
    provider.increase_size(2)
    assert kube.calls == [("create", "p-3"), ("create", "p-4")]
    created = kube.objects[("Node", None, "p-3")]
    assert created["metadata"]["ownerReferences"][0]["uid"] == "uid-p"


def test_kwok_refuses_to_delete_a_node_it_does_not_own():
    kube = FakeKube()
    provider = KwokProvider(kube, kwok_pool(), [])
    provider.delete_nodes([node("p-0")])
    assert kube.calls == [("delete", "Node", "p-0")]
    with pytest.raises(ProviderError, match="not pool p's"):
        provider.delete_nodes([node("x", uid="other")])


def capi_pool():
    ref = {"name": "md", "namespace": "capi"}
    return {
        **kwok_pool(),
        "spec": {
            "node": {"cpu": "4", "memory": "8Gi"},
            "provider": {"clusterAPI": {"machineDeployment": ref}},
        },
    }


def md(labels=None, replicas=1):
    return {
        ("MachineDeployment", "capi", "md"): {
            "metadata": {
                "name": "md",
                "labels": labels if labels is not None else {"perennial.dev/compute-pool": "p"},
            },
            "spec": {"replicas": replicas},
        }
    }


def test_capi_scales_up_through_the_scale_subresource():
    kube = FakeKube(md(replicas=1))
    provider = provider_for(kube, capi_pool(), [])
    assert isinstance(provider, ClusterAPIProvider)
    assert provider.target_size() == 1
    provider.increase_size(2)
    assert kube.calls == [("scale", "md", 3)]


def test_capi_refuses_a_machinedeployment_the_pool_does_not_own():
    provider = ClusterAPIProvider(FakeKube(md(labels={})), capi_pool(), [])
    with pytest.raises(ProviderError, match="refusing to scale"):
        provider.increase_size(1)
    with pytest.raises(ProviderError, match="does not exist"):
        ClusterAPIProvider(FakeKube(), capi_pool(), []).target_size()


def test_capi_marks_the_machine_before_lowering_replicas():
    kube = FakeKube(md(replicas=2))
    provider = ClusterAPIProvider(kube, capi_pool(), [])
    annotated = node("n1", uid=None, annotations={"cluster.x-k8s.io/machine": "md-abc"})
    provider.delete_nodes([annotated])
    patch = {"metadata": {"annotations": {DELETE_MACHINE: "perennial"}}}
    assert kube.calls == [("patch", "Machine", "capi", "md-abc", patch), ("scale", "md", 1)]
    with pytest.raises(ProviderError, match="not lowering replicas blind"):
        provider.delete_nodes([node("n2", uid=None)])


def test_provider_for_needs_exactly_one_provider():
    pool = {**kwok_pool(), "spec": {"provider": {}}}
    with pytest.raises(ProviderError, match="exactly one"):
        provider_for(FakeKube(), pool, [])
