"""ComputePool on the real control plane: the real scheduler decides what is unschedulable,
the operator (a real process) scales kwok nodes or a Cluster API MachineDeployment.

Every pool gets its own label and taint, so the cluster's default (untainted) CPU nodes never
take a test pod and each test sees only its own nodes. The operator runs without pod
annotations here, so kwok runs and completes Job pods by itself.
"""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from perennial_operator.api.group import API_VERSION, LABEL_COMPUTEPOOL
from perennial_operator.k8s.kube import Kube
from support.operator_process import OperatorOptions
from support.world import World

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
CAPI_CRDS = REPO / "tests" / "manifests" / "capi" / "machinedeployments.yaml"
IMAGE = "registry.invalid/perennial/noop:1"  # never pulled: kwok runs no containers


def restricted_pod(
    name: str, pool: str, cpu: str = "1", memory: str = "1Gi", gpu: int = 0, job: bool = False
) -> dict[str, Any]:
    """A pod that asks for `pool` (its label and taint) and passes Pod Security restricted."""
    requests = {"cpu": cpu, "memory": memory, **({"nvidia.com/gpu": str(gpu)} if gpu else {})}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "restartPolicy": "Never",
            "nodeSelector": {"perennial.dev/test-pool": pool},
            "tolerations": [
                {
                    "key": "perennial.dev/test-pool",
                    "operator": "Equal",
                    "value": pool,
                    "effect": "NoSchedule",
                }
            ],
            "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [
                {
                    "name": "main",
                    "image": IMAGE,
                    "securityContext": {
                        "allowPrivilegeEscalation": False,
                        "capabilities": {"drop": ["ALL"]},
                        "runAsUser": 1000,
                    },
                    "resources": {
                        "requests": requests,
                        "limits": {k: v for k, v in requests.items() if k != "cpu"},
                    },
                }
            ],
        },
    }


def pool_manifest(
    name: str,
    *,
    cpu: str = "4",
    memory: str = "16Gi",
    gpu: int = 0,
    min_nodes: int = 0,
    max_nodes: int = 5,
    delay: int = 3,
    provider: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "ComputePool",
        "metadata": {"name": name},
        "spec": {
            "node": {"cpu": cpu, "memory": memory, "gpu": gpu},
            "labels": {"perennial.dev/test-pool": name},
            "taints": [{"key": "perennial.dev/test-pool", "value": name, "effect": "NoSchedule"}],
            "minNodes": min_nodes,
            "maxNodes": max_nodes,
            "scaleDownDelaySeconds": delay,
            "provider": provider or {"kwok": {}},
        },
    }


@pytest.fixture
def operator_options() -> OperatorOptions:
    # -n <namespace> still watches ComputePools cluster-wide: kopf serves cluster-scoped
    # kinds from cluster-wide endpoints whatever the namespaces. No pod annotations: kwok
    # runs and completes Job pods by itself.
    return OperatorOptions(env={"PERENNIAL_COMPUTEPOOL_RESYNC_SECONDS": "5"})


@pytest.fixture
def pools() -> list[str]:
    """The cluster-scoped pools a test made."""
    return []


@pytest.fixture
def world_notes(kube: Kube, pools: list[str]) -> Callable[[], str]:
    def notes() -> str:
        found = {
            p: (kube.get(API_VERSION, "ComputePool", None, p) or {}).get("status") for p in pools
        }
        return "--- pools ---\n" + json.dumps(found, indent=1)[:3000]

    return notes


@pytest.fixture(autouse=True)
def drop_pools(world: World, pools: list[str]) -> Iterator[None]:
    yield
    for name in pools:
        world.kube.delete(API_VERSION, "ComputePool", None, name)
    for name in pools:  # the operator drains and removes them; we make sure
        for node in pool_nodes(world, name):
            world.kube.delete("v1", "Node", None, node["metadata"]["name"])
    world.wait(
        lambda: not any(world.kube.get(API_VERSION, "ComputePool", None, p) for p in pools),
        "pools deleted",
        timeout=30,
    )


def make_pool(world: World, pools: list[str], manifest: dict[str, Any]) -> str:
    world.create(manifest)
    pools.append(manifest["metadata"]["name"])
    return str(manifest["metadata"]["name"])


def pool_status(world: World, pool: str) -> dict[str, Any]:
    return world.status("ComputePool", pool)


def pool_nodes(world: World, pool: str) -> list[dict[str, Any]]:
    return world.kube.list("v1", "Node", None, f"{LABEL_COMPUTEPOOL}={pool}")


def reasons(world: World, pool: str) -> list[str]:
    return [reason for _, reason, _ in world.events("ComputePool", pool)]


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:5]}"


@pytest.fixture
def artifacts(core: Any, namespace: str, tmp_path: Path) -> Iterator[None]:
    """The artifact PVC TrainingJob pods mount, pre-bound to a hostPath PV (no provisioner)."""
    pv = f"artifacts-{uuid.uuid4().hex[:8]}"
    core.create_persistent_volume(
        {
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {"name": pv},
            "spec": {
                "capacity": {"storage": "1Gi"},
                "accessModes": ["ReadWriteMany"],
                "persistentVolumeReclaimPolicy": "Retain",
                "storageClassName": "",
                "hostPath": {"path": str(tmp_path / "artifacts")},
                "claimRef": {"namespace": namespace, "name": "perennial-artifacts"},
            },
        }
    )
    core.create_namespaced_persistent_volume_claim(
        namespace,
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": "perennial-artifacts", "namespace": namespace},
            "spec": {
                "accessModes": ["ReadWriteMany"],
                "storageClassName": "",
                "volumeName": pv,
                "resources": {"requests": {"storage": "1Gi"}},
            },
        },
    )
    yield
    core.delete_persistent_volume(pv)


def test_gpu_trainingjob_scales_an_empty_pool_to_one_node_and_back_to_zero(
    world: World, pools: list[str], artifacts: None
) -> None:
    example = yaml.safe_load((REPO / "examples" / "computepool-gpu.yaml").read_text())
    pool = copy.deepcopy(example)
    name = pool["metadata"]["name"] = _name("gpu")
    pool["spec"]["labels"] = {**pool["spec"]["labels"], "perennial.dev/test-pool": name}
    pool["spec"].update(scaleDownDelaySeconds=3, maxNodes=2)
    make_pool(world, pools, pool)
    world.wait(lambda: pool_status(world, name).get("conditions"), "pool status")
    assert pool_nodes(world, name) == [] and pool_status(world, name)["nodes"] == 0

    world.create(
        {
            "apiVersion": API_VERSION,
            "kind": "TrainingJob",
            "metadata": {"name": "gpu-train"},
            "spec": {
                "model": "churn",
                "task": "classification",
                "algorithm": "xgboost",  # a family that uses the GPU: only such pods ask
                "dataset": {"uri": "builtin://breast_cancer", "target": "target"},
                "resources": {"cpu": "500m", "memory": "512Mi", "gpu": 1},
                "computePool": name,
            },
        }
    )
    pod = world.wait(
        lambda: next((p for p in world.list("Pod") if p["spec"].get("nodeName")), None),
        "the training pod scheduled",
        timeout=60,
    )
    (node,) = pool_nodes(world, name)
    assert pod["spec"]["nodeName"] == node["metadata"]["name"]
    requests = pod["spec"]["containers"][0]["resources"]["requests"]
    assert requests["nvidia.com/gpu"] == "1"
    assert {"name": "PERENNIAL_GPUS", "value": "1"} in pod["spec"]["containers"][0]["env"]
    up = pool_status(world, name)["lastScaleUp"]
    assert (up["from"], up["to"]) == (0, 1)

    job = world.wait(
        lambda: next(
            (
                j
                for j in world.kube.list("batch/v1", "Job", world.ns)
                if j.get("status", {}).get("succeeded")
            ),
            None,
        ),
        "the Job completed",
        timeout=60,
    )
    assert job["metadata"]["ownerReferences"][0]["name"] == "gpu-train"
    world.wait(
        lambda: not pool_nodes(world, name) and pool_status(world, name).get("nodes") == 0,
        "the pool back at zero nodes",
        timeout=45,
    )
    down = pool_status(world, name)["lastScaleDown"]
    assert (down["from"], down["to"]) == (1, 0)
    seen = reasons(world, name)
    assert "ScaledUp" in seen and "ScaledDown" in seen


def test_ten_cpu_pods_needing_three_nodes_get_exactly_three(world: World, pools: list[str]) -> None:
    name = make_pool(
        world, pools, pool_manifest(_name("cpu"), cpu="4", memory="16Gi", max_nodes=6, delay=600)
    )
    for i in range(10):
        world.create(restricted_pod(f"web-{i}", name, cpu="1", memory="1Gi"))
    world.wait(
        lambda: (
            all(p["spec"].get("nodeName") for p in world.list("Pod"))
            and len(world.list("Pod")) == 10
        ),
        "all ten pods scheduled",
        timeout=60,
    )
    nodes = pool_nodes(world, name)
    assert len(nodes) == 3
    assert {p["spec"]["nodeName"] for p in world.list("Pod")} == {
        n["metadata"]["name"] for n in nodes
    }
    status = world.wait(
        lambda: (
            (s := pool_status(world, name)).get("readyNodes") == 3
            and s.get("pendingPods") == 0
            and s
        ),
        "status: three ready nodes, nothing pending",
    )
    assert status["desiredNodes"] == 3 and status["lastScaleUp"]["to"] == 3
    assert len(pool_nodes(world, name)) == 3


def test_max_nodes_is_respected_and_the_overflow_reported(world: World, pools: list[str]) -> None:
    name = make_pool(
        world, pools, pool_manifest(_name("max"), cpu="2", memory="8Gi", max_nodes=2, delay=600)
    )
    for i in range(3):
        world.create(restricted_pod(f"big-{i}", name, cpu="2", memory="1Gi"))

    def overflow() -> dict[str, Any] | None:
        status = pool_status(world, name)
        cond = next(
            (c for c in status.get("conditions", []) if c["type"] == "CapacityAvailable"), {}
        )
        return (
            cond if cond.get("reason") == "MaxNodesReached" and status.get("nodes") == 2 else None
        )

    cond = world.wait(overflow, "MaxNodesReached with two nodes")
    assert cond["status"] == "False" and "maxNodes 2" in cond["message"]
    assert len(pool_nodes(world, name)) == 2
    # The scheduler places two pods on the new nodes a moment after they are Ready, and
    # the pool's status follows on the next pod event: wait for both, never assume.
    world.wait(
        lambda: (
            sum(1 for p in world.list("Pod") if not p["spec"].get("nodeName")) == 1
            and pool_status(world, name).get("pendingPods") == 1
        ),
        "one pod left pending, in the cluster and in the pool's status",
    )
    world.wait(
        lambda: "MaxNodesReached" in reasons(world, name),
        "a MaxNodesReached event",
    )


def test_a_pod_too_big_for_the_shape_is_reported_not_scaled_for(
    world: World, pools: list[str]
) -> None:
    name = make_pool(
        world, pools, pool_manifest(_name("small"), cpu="2", memory="4Gi", max_nodes=3)
    )
    world.create(restricted_pod("too-big", name, cpu="8", memory="1Gi"))
    key = f"{world.ns}/too-big"
    status = world.wait(
        lambda: (s := pool_status(world, name)).get("unfittablePods") == [key] and s,
        "the pod listed as unfittable",
    )
    cond = next(c for c in status["conditions"] if c["type"] == "PodsFit")
    assert (cond["status"], cond["reason"]) == ("False", "PodTooLarge")
    assert key in cond["message"] and "cpu" in cond["message"]
    event = world.wait(
        lambda: next(
            (m for _, r, m in world.events("ComputePool", name) if r == "PodTooLarge"), None
        ),
        "a PodTooLarge event",
    )
    assert key in event and "cpu" in event
    assert pool_nodes(world, name) == [] and status["desiredNodes"] == 0


@pytest.fixture
def capi(cluster: Any) -> Iterator[None]:
    cluster.kubectl("apply", "--server-side", "-f", str(CAPI_CRDS))
    for crd in ("machinedeployments.cluster.x-k8s.io", "machines.cluster.x-k8s.io"):
        cluster.kubectl("wait", "--for=condition=Established", f"crd/{crd}", "--timeout=60s")
    yield
    cluster.kubectl("delete", "-f", str(CAPI_CRDS), "--wait=false", check=False)


def machine_deployment(name: str, pool: str | None) -> dict[str, Any]:
    labels = {LABEL_COMPUTEPOOL: pool} if pool else {}
    return {
        "apiVersion": "cluster.x-k8s.io/v1beta1",
        "kind": "MachineDeployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "clusterName": "workload",
            "replicas": 0,
            "selector": {"matchLabels": {"pool": name}},
            "template": {"metadata": {"labels": {"pool": name}}, "spec": {}},
        },
    }


def test_cluster_api_provider_sets_machinedeployment_replicas(
    world: World, pools: list[str], capi: None
) -> None:
    name = _name("capi")
    world.create(machine_deployment("gpu-md", name))
    world.create(machine_deployment("not-ours", None))
    ref = {"clusterAPI": {"machineDeployment": {"name": "gpu-md", "namespace": world.ns}}}
    make_pool(
        world, pools, pool_manifest(name, cpu="8", memory="32Gi", gpu=1, max_nodes=4, provider=ref)
    )
    foreign = _name("foreign")
    bad = {"clusterAPI": {"machineDeployment": {"name": "not-ours", "namespace": world.ns}}}
    make_pool(world, pools, pool_manifest(foreign, max_nodes=4, provider=bad))
    for i in range(2):
        world.create(restricted_pod(f"trainer-{i}", name, cpu="4", memory="8Gi", gpu=1))
    world.create(restricted_pod("stuck", foreign, cpu="1"))

    def replicas(md: str) -> int:
        obj = world.kube.get("cluster.x-k8s.io/v1beta1", "MachineDeployment", world.ns, md) or {}
        return int(obj.get("spec", {}).get("replicas", -1))

    world.wait(lambda: replicas("gpu-md") == 2, "MachineDeployment gpu-md at 2 replicas")
    status = world.wait(
        lambda: (s := pool_status(world, name)).get("desiredNodes") == 2 and s, "desiredNodes 2"
    )
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert (ready["reason"], status["nodes"]) == ("ScalingUp", 0)  # no Cluster API controller

    cond = world.wait(
        lambda: next(
            (
                c
                for c in pool_status(world, foreign).get("conditions", [])
                if c["type"] == "ProviderReady" and c["status"] == "False"
            ),
            None,
        ),
        "ProviderReady=False on the foreign pool",
    )
    assert cond["reason"] == "ProviderError" and "refusing to scale" in cond["message"]
    assert replicas("not-ours") == 0
