"""Finding 10 (issue 20): least privilege, on the real control plane. The RBAC of manifests/
is applied as a namespaced install (support/operator_rbac.py) and `kubectl auth can-i --list`
for the operator's ServiceAccount must show exactly the allow-list below, each line with the
call that needs it; in a namespace the operator does not watch, only the cluster-scoped part.
(Every integration test that starts the operator runs it under this ServiceAccount, so a
missing verb fails them.)"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from kubernetes import client

from support.cluster_fixtures import REPO, TestCluster
from support.operator_rbac import USER, bind
from support.poll import until

pytestmark = [pytest.mark.integration, pytest.mark.reliability]

Rule = tuple[str, str, str]  # (resource.group, resource name or "", verb)

# Cluster-scoped grants: they show in every namespace.
CLUSTER: dict[Rule, str] = {
    ("computepools.perennial.dev", "", "get"): "placement reads a pool; the pool loop",
    ("computepools.perennial.dev", "", "list"): "kopf watches pools",
    ("computepools.perennial.dev", "", "watch"): "kopf watches pools",
    ("computepools.perennial.dev", "", "patch"): "kopf's finalizer and annotations",
    ("computepools.perennial.dev/status", "", "patch"): "the pool's status",
    ("customresourcedefinitions.apiextensions.k8s.io", "", "list"): "kopf: CRDs added later",
    ("customresourcedefinitions.apiextensions.k8s.io", "", "watch"): "kopf: CRDs added later",
    ("namespaces", "", "list"): "kopf, -n patterns: which namespaces match (names only)",
    ("namespaces", "", "watch"): "kopf, -n patterns: namespaces created later",
    # The ComputePool node providers (kwok: create/delete; Cluster API: machines).
    ("nodes", "", "list"): "a pool's nodes, by label",
    ("nodes", "", "patch"): "idle marks, cordon, uncordon",
    ("nodes", "", "create"): "kwok provider: scale up",
    ("nodes", "", "delete"): "kwok provider: scale down",
    ("pods", "", "list"): "ComputePool demand: active pods of every namespace",
    ("pods", "", "watch"): "ComputePool: a pending pod wakes its pool",
    ("pods/eviction", "", "create"): "deleting a ComputePool drains its nodes",
    ("events", "", "create"): "events (in default: about cluster-scoped pools)",
    ("machinedeployments.cluster.x-k8s.io", "", "get"): "Cluster API: the pool's label",
    ("machinedeployments.cluster.x-k8s.io/scale", "", "get"): "Cluster API: replicas",
    ("machinedeployments.cluster.x-k8s.io/scale", "", "patch"): "Cluster API: scale",
    ("machines.cluster.x-k8s.io", "", "patch"): "Cluster API: delete-machine mark",
}
# Namespaced grants: only in a namespace the operator watches.
WATCHED: dict[Rule, str] = {
    **{
        (f"{plural}.perennial.dev", "", verb): "kopf watches; annotations, finalizers"
        for plural in ("trainingjobs", "modelversions", "inferenceservices", "retrainpolicies")
        for verb in ("get", "list", "watch", "patch")
    },
    ("modelversions.perennial.dev", "", "create"): "registration on success",
    ("trainingjobs.perennial.dev", "", "create"): "a RetrainPolicy starts one",
    ("trainingjobs.perennial.dev", "", "delete"): "RetrainPolicy spec.historyLimit",
    **{
        (f"{plural}.perennial.dev/status", "", "patch"): "status"
        for plural in ("trainingjobs", "modelversions", "inferenceservices", "retrainpolicies")
    },
    **{
        (f"{plural}.perennial.dev/finalizers", "", "update"): "children's blockOwnerDeletion"
        for plural in ("trainingjobs", "inferenceservices", "retrainpolicies")
    },
    **{
        ("jobs.batch", "", verb): "training Jobs (apply), probe Jobs (create); watched"
        for verb in ("get", "list", "watch", "create", "patch")
    },
    **{
        ("deployments.apps", "", verb): "serving Deployments: apply, watch, drop the canary"
        for verb in ("get", "list", "watch", "create", "patch", "delete")
    },
    **{
        ("horizontalpodautoscalers.autoscaling", "", verb): "spec.autoscaling"
        for verb in ("get", "create", "patch", "delete")
    },
    **{
        ("configmaps", "", verb): "<tj>-spec, probe template (apply); version marks"
        for verb in ("get", "create", "patch")
    },
    **{
        ("services", "", verb): "<isvc>, -stable, -canary; role Services removed"
        for verb in ("get", "create", "patch", "delete")
    },
    ("persistentvolumeclaims", "", "get"): "the namespace's artifact claim exists?",
    ("persistentvolumeclaims", "", "create"): "the artifact claim, made when missing",
    **{
        ("httproutes.gateway.networking.k8s.io", "", verb): "canary weights on a user's route"
        for verb in ("get", "list", "watch", "patch")
    },
}


def can_i(cluster: TestCluster, user: str, namespace: str) -> set[Rule]:
    """`kubectl auth can-i --list` as a set of (resource, name, verb); non-resource URLs
    (the API's discovery, every authenticated user's) are left out."""
    out = cluster.kubectl("auth", "can-i", "--list", f"--as={user}", "-n", namespace).stdout
    header, *lines = out.splitlines()
    # Columns: Resources, Non-Resource URLs, Resource Names, Verbs; "[]" when empty.
    at = [header.index(h) for h in ("Non-Resource URLs", "Resource Names", "Verbs")]
    rules: set[Rule] = set()
    for line in lines:
        resource = line[: at[0]].strip()
        names, verbs = line[at[1] : at[2]].strip(), line[at[2] :].strip()
        if not resource:  # a non-resource URL
            continue
        for verb in verbs.strip("[]").split():
            for name in names.strip("[]").split() or [""]:
                rules.add((resource, name, verb))
    return rules


@pytest.fixture
def other_namespace(core: client.CoreV1Api) -> Iterator[str]:
    name = f"unwatched-{os.getpid()}-{os.urandom(3).hex()}"
    core.create_namespace({"metadata": {"name": name}})
    try:
        yield name
    finally:
        core.delete_namespace(name, propagation_policy="Background")


def baseline(cluster: TestCluster, namespace: str) -> set[Rule]:
    """What any ServiceAccount may do (self reviews, granted to system:authenticated)."""
    return can_i(cluster, f"system:serviceaccount:{namespace}:nobody", namespace)


def test_the_operator_may_do_only_cluster_scoped_things_where_it_does_not_watch(
    cluster: TestCluster, operator_kubeconfig: Path, namespace: str, kube, other_namespace: str
) -> None:
    bind(cluster.kubectl, namespace)
    extra = can_i(cluster, USER, other_namespace) - baseline(cluster, other_namespace)
    assert extra == set(CLUSTER), (
        f"beyond the allow-list: {sorted(extra - set(CLUSTER))}; "
        f"missing: {sorted(set(CLUSTER) - extra)}"
    )
    # No verb on workloads, secrets or our namespaced resources there.
    for verb, what in [("create", "jobs"), ("get", "secrets"), ("patch", "trainingjobs")]:
        said = cluster.kubectl(
            "auth", "can-i", verb, what, f"--as={USER}", "-n", other_namespace, check=False
        )  # fmt: skip
        assert said.stdout.strip() == "no", (verb, what)


def test_in_a_watched_namespace_exactly_what_the_code_calls(
    cluster: TestCluster, operator_kubeconfig: Path, namespace: str, kube
) -> None:
    bind(cluster.kubectl, namespace)
    extra = can_i(cluster, USER, namespace) - baseline(cluster, namespace)
    want = set(CLUSTER) | set(WATCHED)
    assert extra == want, (
        f"beyond the allow-list: {sorted(extra - want)}; missing: {sorted(want - extra)}"
    )
    said = cluster.kubectl(
        "auth", "can-i", "get", "secrets", f"--as={USER}", "-n", namespace, check=False
    )  # fmt: skip
    assert said.stdout.strip() == "no"


def test_server_side_apply_that_creates_needs_create(
    cluster: TestCluster, operator_kubeconfig: Path, namespace: str, other_namespace: str
) -> None:
    """Why applied children (Deployments, Services, HPAs) carry create beside patch: the API
    server authorizes an apply that creates the object as create. Under the operator's own
    token an apply creates a Service in a watched namespace, and none elsewhere."""
    bind(cluster.kubectl, namespace)
    as_operator = TestCluster(operator_kubeconfig, cluster.kubectl_bin)

    def apply(ns: str) -> subprocess.CompletedProcess[str]:
        svc = {
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "applied", "namespace": ns},
            "spec": {"ports": [{"port": 80}], "selector": {"app": "x"}},
        }  # fmt: skip
        return as_operator.kubectl(
            "apply", "--server-side", "--field-manager=perennial", "-f", "-",
            stdin=yaml.safe_dump(svc), check=False,
        )  # fmt: skip

    done = apply(namespace)
    assert done.returncode == 0, done.stderr
    refused = apply(other_namespace)
    assert refused.returncode != 0 and "forbidden" in refused.stderr


def test_users_get_perennial_through_view_and_edit(
    cluster: TestCluster, namespace: str, kube
) -> None:
    cluster.kubectl("apply", "--server-side", "-f", str(REPO / "manifests/user-roles.yaml"))
    for user, role in [("viewer", "view"), ("editor", "edit")]:
        cluster.kubectl(
            "create", "rolebinding", f"{user}-{role}", f"--clusterrole={role}",
            f"--user={user}", "-n", namespace,
        )  # fmt: skip

    def can(user: str, verb: str, what: str) -> bool:
        what, _, sub = what.partition("/")
        said = cluster.kubectl(
            "auth", "can-i", verb, what, f"--as={user}", "-n", namespace,
            *([f"--subresource={sub}"] if sub else []), check=False,
        )  # fmt: skip
        return said.stdout.strip() == "yes"

    # Aggregation is the controller-manager's: wait until `view` carries our rules.
    until(lambda: can("viewer", "list", "trainingjobs.perennial.dev"), timeout=30,
          message="perennial-view aggregated into view")  # fmt: skip
    assert can("viewer", "get", "inferenceservices.perennial.dev")
    assert not can("viewer", "create", "trainingjobs.perennial.dev")
    until(lambda: can("editor", "create", "trainingjobs.perennial.dev"), timeout=30,
          message="perennial-edit aggregated into edit")  # fmt: skip
    assert can("editor", "delete", "inferenceservices.perennial.dev")
    assert can("editor", "update", "inferenceservices.perennial.dev/scale")
    # Status is the operator's; ComputePools are the cluster administrator's.
    assert not can("editor", "patch", "trainingjobs.perennial.dev/status")
    assert not can("editor", "create", "computepools.perennial.dev")


def test_the_kustomizations_build(cluster: TestCluster, tmp_path: Path) -> None:
    """The base (cluster-wide), and an overlay with the namespaced and ComputePool
    components: the namespaced verbs are not bound cluster-wide there."""
    base = yaml.safe_load_all(cluster.kubectl("kustomize", str(REPO / "manifests")).stdout)
    bindings = {d["metadata"]["name"] for d in base if d and d["kind"] == "ClusterRoleBinding"}
    assert {"perennial-operator", "perennial-operator-cluster"} <= bindings
    assert not {b for b in bindings if "computepool" in b}  # node verbs: opt in
    rel = os.path.relpath(REPO / "manifests", tmp_path)
    (tmp_path / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "resources": [rel],
                "components": [
                    f"{rel}/components/namespaced",
                    f"{rel}/components/computepool-kwok",
                ],
            }
        )
    )
    docs = [d for d in yaml.safe_load_all(cluster.kubectl("kustomize", str(tmp_path)).stdout) if d]
    bindings = {d["metadata"]["name"] for d in docs if d["kind"] == "ClusterRoleBinding"}
    assert "perennial-operator" not in bindings
    assert "perennial-operator-computepool-kwok" in bindings
    (deploy,) = [
        d
        for d in docs
        if d["kind"] == "Deployment" and d["metadata"]["name"] == "perennial-operator"
    ]
    assert deploy["spec"]["template"]["spec"]["containers"][0]["args"][0] == "--namespace=ml-team"
