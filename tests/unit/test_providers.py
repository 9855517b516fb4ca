"""Providers against the in-memory FakeKube: which writes each makes, and what it refuses."""

from __future__ import annotations

import pytest

from perennial_operator.providers import ProviderError, provider_for
from perennial_operator.providers.clusterapi import DELETE_MACHINE, ClusterAPIProvider
from perennial_operator.providers.kwok import KwokProvider
from support.fake_kube import FakeKube

pytestmark = pytest.mark.unit


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
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {"perennial.dev/compute-pool": pool},
            "ownerReferences": refs,
            "annotations": annotations or {},
        },
    }


def test_kwok_owns_only_nodes_with_its_label_and_its_uid():
    provider = KwokProvider(FakeKube(), kwok_pool(), [])
    assert provider.owns(node("a"))  # made before the uid annotation: an owner reference
    assert provider.owns(
        node("n", uid=None, annotations={"perennial.dev/compute-pool-uid": "uid-p"})
    )
    assert not provider.owns(
        node("m", uid=None, annotations={"perennial.dev/compute-pool-uid": "other"})
    )
    assert not provider.owns(node("b", uid="someone-else"))
    assert not provider.owns(node("c", uid=None))
    assert not provider.owns(node("d", pool="q"))


def test_kwok_counts_its_nodes_and_fills_the_lowest_free_names():
    nodes = [node("p-0"), node("p-2"), node("stranger", uid="x")]
    kube = FakeKube(node("p-1", uid="x"))  # taken by someone else, not listed to the provider
    provider = KwokProvider(kube, kwok_pool(), nodes)
    assert provider.target_size() == 2
    provider.increase_size(2)
    assert kube.verbs() == ["create Node/p-3", "create Node/p-4"]
    created = kube.get("v1", "Node", None, "p-3")
    assert created["metadata"]["annotations"]["perennial.dev/compute-pool-uid"] == "uid-p"
    assert provider.owns(created)
    assert kube.get("v1", "Node", None, "p-1")["metadata"]["ownerReferences"][0]["uid"] == "x"


def test_kwok_refuses_to_delete_a_node_it_does_not_own():
    kube = FakeKube(node("p-0"), node("x", uid="other"))
    provider = KwokProvider(kube, kwok_pool(), [])
    provider.delete_nodes([node("p-0")])
    assert kube.verbs() == ["delete Node/p-0"]
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
        "apiVersion": "cluster.x-k8s.io/v1beta1",
        "kind": "MachineDeployment",
        "metadata": {
            "name": "md",
            "namespace": "capi",
            "labels": labels if labels is not None else {"perennial.dev/compute-pool": "p"},
        },
        "spec": {"replicas": replicas},
    }


def machine(name):
    meta = {"name": name, "namespace": "capi"}
    return {"apiVersion": "cluster.x-k8s.io/v1beta1", "kind": "Machine", "metadata": meta}


def replicas(kube):
    return kube.get("cluster.x-k8s.io/v1beta1", "MachineDeployment", "capi", "md")["spec"][
        "replicas"
    ]


def test_capi_scales_up_through_the_scale_subresource():
    kube = FakeKube(md(replicas=1))
    provider = provider_for(kube, capi_pool(), [])
    assert isinstance(provider, ClusterAPIProvider)
    assert provider.target_size() == 1
    provider.increase_size(2)
    assert kube.verbs() == ["patch MachineDeployment/md/scale"]
    assert replicas(kube) == 3


def test_capi_refuses_a_machinedeployment_the_pool_does_not_own():
    provider = ClusterAPIProvider(FakeKube(md(labels={})), capi_pool(), [])
    with pytest.raises(ProviderError, match="refusing to scale"):
        provider.increase_size(1)
    with pytest.raises(ProviderError, match="does not exist"):
        ClusterAPIProvider(FakeKube(), capi_pool(), []).target_size()


def test_capi_marks_the_machine_before_lowering_replicas():
    kube = FakeKube(md(replicas=2), machine("md-abc"))
    provider = ClusterAPIProvider(kube, capi_pool(), [])
    annotated = node("n1", uid=None, annotations={"cluster.x-k8s.io/machine": "md-abc"})
    provider.delete_nodes([annotated])
    assert kube.verbs() == ["patch Machine/md-abc", "patch MachineDeployment/md/scale"]
    marked = kube.get("cluster.x-k8s.io/v1beta1", "Machine", "capi", "md-abc")
    assert marked["metadata"]["annotations"] == {DELETE_MACHINE: "perennial"}
    assert replicas(kube) == 1
    with pytest.raises(ProviderError, match="not lowering replicas blind"):
        provider.delete_nodes([node("n2", uid=None)])


def test_provider_for_needs_exactly_one_provider():
    pool = {**kwok_pool(), "spec": {"provider": {}}}
    with pytest.raises(ProviderError, match="exactly one"):
        provider_for(FakeKube(), pool, [])
