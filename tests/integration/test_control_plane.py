"""The local control plane behaves like a cluster: what only a real one can show."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from perennial_hack.cluster.nodes import GPU_RESOURCE
from support.poll import until

pytestmark = pytest.mark.integration

IMAGE = "registry.invalid/perennial/noop:1"  # never pulled: kwok runs no containers
GPU_TAINT = {"key": GPU_RESOURCE, "value": "present", "effect": "NoSchedule"}


def restricted_pod_spec(**extra: Any) -> dict[str, Any]:
    """A pod spec that passes Pod Security `restricted`."""
    return {
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
                "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}},
            }
        ],
        **extra,
    }


def job_body(name: str, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "metadata": {"annotations": annotations or {}},
                "spec": restricted_pod_spec(restartPolicy="Never"),
            },
        },
    }


def deployment_body(name: str, replicas: int) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": restricted_pod_spec()},
        },
    }


def condition(obj: Any, type_: str) -> Any:
    return next((c for c in (obj.status.conditions or []) if c.type == type_), None)


@pytest.fixture
def apps(cluster):
    with cluster.api_client() as api:
        yield client.AppsV1Api(api)


@pytest.fixture
def batch(cluster):
    with cluster.api_client() as api:
        yield client.BatchV1Api(api)


def test_deployment_pods_run_on_kwok_nodes(apps, core, namespace):
    apps.create_namespaced_deployment(namespace, deployment_body("web", replicas=2))

    def running_pods():
        pods = core.list_namespaced_pod(namespace, label_selector="app=web").items
        running = [p for p in pods if p.status.phase == "Running"]
        return running if len(running) == 2 else None

    pods = until(running_pods, timeout=60, message="2 Running pods of Deployment web")
    node_names = {p.spec.node_name for p in pods}
    for name in node_names:
        assert core.read_node(name).metadata.annotations["kwok.x-k8s.io/node"] == "fake"
    until(
        lambda: apps.read_namespaced_deployment("web", namespace).status.ready_replicas == 2,
        timeout=60,
        message="Deployment web ready",
    )


def test_job_completes(batch, namespace):
    batch.create_namespaced_job(namespace, job_body("ok"))
    job = until(
        lambda: (j := batch.read_namespaced_job("ok", namespace)).status.succeeded == 1 and j,
        timeout=60,
        message="Job ok succeeded",
    )
    until(
        lambda: (
            getattr(
                condition(batch.read_namespaced_job("ok", namespace), "Complete"), "status", None
            )
            == "True"
        ),
        timeout=30,
        message="Job ok Complete condition",
    )
    assert job.status.failed in (None, 0)


def test_simulated_failure_fails_the_job_with_exit_code_and_message(batch, core, namespace):
    annotations = {
        "perennial.dev/simulate": "fail",
        "perennial.dev/simulate-exit-code": "3",
        "perennial.dev/simulate-message": "bad spec: no such column",
    }
    batch.create_namespaced_job(namespace, job_body("boom", annotations))
    until(
        lambda: (
            getattr(
                condition(batch.read_namespaced_job("boom", namespace), "Failed"), "status", None
            )
            == "True"
        ),
        timeout=60,
        message="Job boom Failed condition",
    )
    (pod,) = core.list_namespaced_pod(namespace, label_selector="job-name=boom").items
    assert pod.status.phase == "Failed"
    terminated = pod.status.container_statuses[0].state.terminated
    assert (terminated.exit_code, terminated.message) == (3, "bad spec: no such column")


def test_gpu_pod_is_unschedulable_until_a_gpu_node_exists(cluster, core, namespace):
    pool = f"gpu-{uuid.uuid4().hex[:6]}"
    spec = restricted_pod_spec(
        nodeSelector={"perennial.dev/compute-pool": pool},
        tolerations=[{"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}],
    )
    spec["containers"][0]["resources"] = {"limits": {GPU_RESOURCE: "1"}}
    core.create_namespaced_pod(namespace, {"metadata": {"name": "train"}, "spec": spec})

    def unschedulable():
        scheduled = condition(core.read_namespaced_pod("train", namespace), "PodScheduled")
        return scheduled is not None and scheduled.status == "False" and scheduled.reason

    reason = until(unschedulable, timeout=30, message="PodScheduled=False")
    assert reason == "Unschedulable"
    assert core.read_namespaced_pod("train", namespace).status.phase == "Pending"

    node = f"{pool}-0"
    cluster.create_node(
        node,
        cpu=16,
        memory="64Gi",
        gpu=4,
        labels={"perennial.dev/compute-pool": pool},
        taints=[GPU_TAINT],
    )
    try:
        pod = until(
            lambda: (
                (p := core.read_namespaced_pod("train", namespace)).status.phase == "Running" and p
            ),
            timeout=90,  # the scheduler retries unschedulable pods with a backoff
            message="GPU pod Running",
        )
        assert pod.spec.node_name == node
    finally:
        core.delete_namespaced_pod("train", namespace, grace_period_seconds=0)
        cluster.delete_node(node)


def test_deleting_an_owner_garbage_collects_its_children(apps, core, namespace):
    apps.create_namespaced_deployment(namespace, deployment_body("gc", replicas=1))
    until(
        lambda: core.list_namespaced_pod(namespace, label_selector="app=gc").items,
        timeout=60,
        message="a pod of Deployment gc",
    )
    assert apps.list_namespaced_replica_set(namespace, label_selector="app=gc").items

    apps.delete_namespaced_deployment("gc", namespace, propagation_policy="Background")

    def children_gone():
        rs = apps.list_namespaced_replica_set(namespace, label_selector="app=gc").items
        pods = core.list_namespaced_pod(namespace, label_selector="app=gc").items
        return not rs and not pods

    until(children_gone, timeout=60, message="ReplicaSet and pods of gc deleted")


def test_garbage_collection_follows_owner_references(core, namespace):
    owner = core.create_namespaced_config_map(namespace, {"metadata": {"name": "owner"}})
    ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner.metadata.uid}
    core.create_namespaced_config_map(
        namespace, {"metadata": {"name": "child", "ownerReferences": [ref]}}
    )
    core.delete_namespaced_config_map("owner", namespace)

    def child_gone():
        try:
            core.read_namespaced_config_map("child", namespace)
        except ApiException as err:
            return err.status == 404
        return False

    until(child_gone, timeout=60, message="child ConfigMap garbage-collected")


def test_restricted_pod_security_rejects_a_privileged_pod(core, namespace):
    spec = restricted_pod_spec()
    # allowPrivilegeEscalation=false with privileged=true would fail validation (422) first.
    spec["containers"][0]["securityContext"] = {"privileged": True}
    with pytest.raises(ApiException) as err:
        core.create_namespaced_pod(namespace, {"metadata": {"name": "root"}, "spec": spec})
    assert err.value.status == 403
    message = json.loads(err.value.body)["message"]
    assert 'violates PodSecurity "restricted:latest"' in message
    assert "privileged" in message


def test_kwok_leaves_custom_status_pods_to_the_test(core, namespace):
    custom = {"kwok.x-k8s.io/status": "custom"}
    core.create_namespaced_pod(
        namespace,
        {"metadata": {"name": "mine", "annotations": custom}, "spec": restricted_pod_spec()},
    )
    core.create_namespaced_pod(
        namespace, {"metadata": {"name": "kwoks"}, "spec": restricted_pod_spec()}
    )
    # Both are scheduled together; once kwok has run the ordinary one, it has seen ours too.
    until(
        lambda: core.read_namespaced_pod("kwoks", namespace).status.phase == "Running",
        timeout=60,
        message="ordinary pod Running",
    )
    until(
        lambda: core.read_namespaced_pod("mine", namespace).spec.node_name,
        timeout=30,
        message="custom-status pod scheduled",
    )
    assert core.read_namespaced_pod("mine", namespace).status.phase == "Pending"

    core.patch_namespaced_pod_status(
        "mine", namespace, {"status": {"phase": "Running", "podIP": "10.244.9.9"}}
    )
    assert core.read_namespaced_pod("mine", namespace).status.pod_ip == "10.244.9.9"
