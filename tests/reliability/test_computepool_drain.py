"""Finding 7 (issue 20): deleting a ComputePool drains its nodes before they go. On the real
control plane (kube-apiserver with its Eviction API and PodDisruptionBudget checks,
kube-controller-manager's disruption controller and garbage collector, the scheduler, kwok
nodes), with the operator as a real process under its own RBAC.

Before the fix the nodes were the pool's dependents: deleting the pool let the garbage
collector delete them at once, and the pods on them with them (an InferenceService went
Degraded 0/1).

kwok runs no containers: a pod on a kwok node is Running and Ready because kwok says so,
and an evicted pod (deletionTimestamp set) is deleted by kwok's pod-delete stage at once,
without the grace period a kubelet would give the container.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from perennial_operator.api.group import API_VERSION, GROUP, LABEL_COMPUTEPOOL, VERSION
from support.operator_process import OperatorOptions
from support.world import World, resource

pytestmark = [pytest.mark.integration, pytest.mark.reliability]

FORCE = "perennial.dev/force-delete"
IMAGE = "registry.invalid/perennial/noop:1"  # never pulled: kwok runs no containers


@pytest.fixture
def operator_options() -> OperatorOptions:
    return OperatorOptions(env={"PERENNIAL_COMPUTEPOOL_RESYNC_SECONDS": "2"})


def pool_manifest(name: str) -> dict[str, Any]:
    """One node up from the start (minNodes 1), tainted so only the test's pods land there."""
    return resource(
        "ComputePool", name,
        {"node": {"cpu": "4", "memory": "16Gi", "gpu": 0},
         "labels": {"perennial.dev/test-pool": name},
         "taints": [{"key": "perennial.dev/test-pool", "value": name, "effect": "NoSchedule"}],
         "minNodes": 1, "maxNodes": 2, "scaleDownDelaySeconds": 600,
         "provider": {"kwok": {}}},
    )  # fmt: skip


def pod_on(pool: str, name: str, labels: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "nodeSelector": {"perennial.dev/test-pool": pool},
            "tolerations": [{"key": "perennial.dev/test-pool", "operator": "Equal",
                             "value": pool, "effect": "NoSchedule"}],
            "securityContext": {"runAsNonRoot": True, "runAsUser": 1000,
                                "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{
                "name": "main", "image": IMAGE,
                "securityContext": {"allowPrivilegeEscalation": False,
                                    "capabilities": {"drop": ["ALL"]}},
                "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}},
            }],
        },
    }  # fmt: skip


@pytest.fixture
def pools(world: World) -> Iterator[list[str]]:
    made: list[str] = []
    yield made
    for name in made:  # whatever a test left: force, delete, and make sure
        if world.kube.get(API_VERSION, "ComputePool", None, name):
            annotate(world, name, "true")
            world.kube.delete(API_VERSION, "ComputePool", None, name)
    world.wait(lambda: not any(pool_exists(world, p) for p in made), "pools gone", timeout=60)
    for name in made:
        for node in nodes(world, name):
            world.kube.delete("v1", "Node", None, node["metadata"]["name"])


def annotate(world: World, pool: str, value: str | None) -> None:
    patch = {"metadata": {"annotations": {FORCE: value}}}
    world.kube.patch(API_VERSION, "ComputePool", None, pool, patch)


def pool_exists(world: World, pool: str) -> bool:
    return world.kube.get(API_VERSION, "ComputePool", None, pool) is not None


def nodes(world: World, pool: str) -> list[dict[str, Any]]:
    return world.kube.list("v1", "Node", None, f"{LABEL_COMPUTEPOOL}={pool}")


def ready(world: World, pool: str) -> dict[str, Any]:
    obj = world.kube.get(API_VERSION, "ComputePool", None, pool) or {}
    conditions = (obj.get("status") or {}).get("conditions") or []
    return next((c for c in conditions if c["type"] == "Ready"), {})


def pool_with_running_pods(world: World, pools: list[str], **pods: dict[str, str]) -> str:
    """A pool with one node, and the named pods (labels) Running and Ready on it."""
    name = f"drain-{uuid.uuid4().hex[:6]}"
    world.create(pool_manifest(name))
    pools.append(name)
    world.wait(lambda: len(nodes(world, name)) == 1, "the pool's first node", timeout=30)
    for pod, labels in pods.items():
        world.create(pod_on(name, pod, labels))

    def all_ready() -> bool:
        found = [world.get("Pod", p) for p in pods]
        return all(
            any(c["type"] == "Ready" and c["status"] == "True"
                for c in (p.get("status") or {}).get("conditions") or [])
            for p in found
        )  # fmt: skip

    world.wait(all_ready, "the pods Running and Ready on the pool's node", timeout=60)
    return name


def delete_pool(world: World, pool: str, propagation: str = "Background") -> None:
    """`kubectl delete computepool <pool> [--cascade=foreground]`."""
    client.CustomObjectsApi(world.kube.api).delete_cluster_custom_object(
        GROUP, VERSION, "computepools", pool,
        body=client.V1DeleteOptions(propagation_policy=propagation),
    )  # fmt: skip


def test_a_pool_serving_an_inferenceservice_keeps_its_node_until_forced(
    world: World, pools: list[str]
) -> None:
    isvc = {"perennial.dev/inferenceservice": "shop", "app": "shop"}
    pool = pool_with_running_pods(world, pools, **{"shop-0": isvc, "batch-0": {"app": "b"}})
    (node,) = nodes(world, pool)
    # Foreground: with an owner reference the garbage collector would delete the node now.
    delete_pool(world, pool, propagation="Foreground")
    cond = world.wait(
        lambda: (c := ready(world, pool)).get("reason") == "DeletionBlocked" and c,
        "Ready=False, DeletionBlocked",
    )
    assert f"{world.ns}/shop-0 of InferenceService {world.ns}/shop" in cond["message"]
    assert FORCE in cond["message"]
    kept = world.kube.get("v1", "Node", None, node["metadata"]["name"])
    assert kept is not None and kept["spec"].get("unschedulable") is True  # cordoned
    assert world.get("Pod", "shop-0") and world.get("Pod", "batch-0")  # nothing evicted
    assert ("Warning", "DeletionBlocked") in [
        (t, r) for t, r, _ in world.events("ComputePool", pool)
    ]

    annotate(world, pool, "true")
    world.wait(lambda: not pool_exists(world, pool), "the forced pool drained and gone", 60)
    assert nodes(world, pool) == []
    assert not world.get("Pod", "shop-0") and not world.get("Pod", "batch-0")


def test_a_disruption_budget_holds_the_drain_until_it_allows_it(
    world: World, pools: list[str]
) -> None:
    pool = pool_with_running_pods(world, pools, **{"db-0": {"app": "db"}})
    policy = client.PolicyV1Api(world.kube.api)
    pdb = {
        "apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
        "metadata": {"name": "db"},
        "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "db"}}},
    }  # fmt: skip
    policy.create_namespaced_pod_disruption_budget(world.ns, pdb)
    world.wait(
        lambda: (
            (b := policy.read_namespaced_pod_disruption_budget("db", world.ns)).status
            and b.status.current_healthy == 1
        ),
        "the budget counts the pod",
    )
    delete_pool(world, pool)
    cond = world.wait(
        lambda: (c := ready(world, pool)).get("reason") == "EvictionRefused" and c,
        "Ready=False, EvictionRefused",
    )
    assert f"{world.ns}/db-0" in cond["message"]
    assert len(nodes(world, pool)) == 1 and world.get("Pod", "db-0")

    policy.patch_namespaced_pod_disruption_budget("db", world.ns, {"spec": {"minAvailable": 0}})
    world.wait(lambda: not pool_exists(world, pool), "drained once the budget allows it", 60)
    assert nodes(world, pool) == [] and not world.get("Pod", "db-0")


def test_an_idle_pool_goes_with_its_nodes(world: World, pools: list[str]) -> None:
    pool = pool_with_running_pods(world, pools)
    assert len(nodes(world, pool)) == 1
    delete_pool(world, pool)
    world.wait(lambda: not pool_exists(world, pool), "the idle pool gone", 30)
    assert nodes(world, pool) == []
