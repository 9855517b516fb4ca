"""manifests/ renders with kustomize, holds everything the operator needs, and its RBAC is
least privilege. Rendering needs a kubectl (PATH, /usr/bin, or the one `make k8s-build`
puts in the cache); without one this test fails rather than skips."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from support.kubectl_binary import find_kubectl

pytestmark = pytest.mark.unit
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def rendered() -> list[dict[str, Any]]:
    kubectl = find_kubectl()
    assert kubectl is not None, "no kubectl: run `make k8s-build` (or install kubectl)"
    out = subprocess.run(
        [str(kubectl), "kustomize", str(REPO / "manifests")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


def by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [doc for doc in docs if doc["kind"] == kind]


def operators(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    """The operator's own objects of a kind (the Studio's have their own test)."""
    return [doc for doc in by_kind(docs, kind) if "studio" not in doc["metadata"]["name"]]


def test_renders_every_piece(rendered: list[dict[str, Any]]) -> None:
    crds = {doc["metadata"]["name"] for doc in by_kind(rendered, "CustomResourceDefinition")}
    assert {
        f"{p}.perennial.dev"
        for p in (
            "trainingjobs",
            "modelversions",
            "inferenceservices",
            "retrainpolicies",
            "computepools",
        )
    } <= crds
    assert not {name for name in crds if name.endswith(".kopf.dev")}  # no kopf peering
    kinds = {doc["kind"] for doc in rendered}
    assert {
        "Namespace",
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Deployment",
        "Service",
        "Role",
        "RoleBinding",
        "PodDisruptionBudget",
    } <= kinds
    # One pass on a fresh cluster: no instance of a CRD the same apply installs.
    groups = {doc["spec"]["group"] for doc in by_kind(rendered, "CustomResourceDefinition")}
    assert not [d for d in rendered if d["apiVersion"].split("/")[0] in groups]


def test_crds_kustomization_lists_every_crd_file() -> None:
    listed = yaml.safe_load((REPO / "crds" / "Kustomization").read_text())["resources"]
    assert sorted(listed) == sorted(p.name for p in (REPO / "crds").glob("*.yaml"))


def test_rbac_is_explicit_and_covers_our_resources(rendered: list[dict[str, Any]]) -> None:
    """The base's two operator ClusterRoles (namespaced verbs, cluster-scoped ones), each
    bound cluster-wide; the exact allow-list is held on the API server by
    tests/reliability/test_operator_rbac.py."""
    roles = {
        r["metadata"]["name"]: r
        for r in operators(rendered, "ClusterRole")
        if r["metadata"]["name"].startswith("perennial-operator")
    }
    assert set(roles) == {"perennial-operator", "perennial-operator-cluster"}
    granted: dict[tuple[str, str], set[str]] = {}
    for role in roles.values():
        for rule in role["rules"]:
            for field in ("apiGroups", "resources", "verbs"):
                assert "*" not in rule[field], rule
            for group in rule["apiGroups"]:
                for resource in rule["resources"]:
                    granted.setdefault((group, resource), set()).update(rule["verbs"])
    for plural in (
        "trainingjobs",
        "modelversions",
        "inferenceservices",
        "retrainpolicies",
        "computepools",
    ):
        assert {"get", "list", "watch", "patch"} <= granted[("perennial.dev", plural)]
        assert "update" not in granted[("perennial.dev", plural)]  # kopf patches
        assert granted[("perennial.dev", f"{plural}/status")] == {"patch"}
    assert granted[("", "pods")] == {"list", "watch"}
    assert "delete" not in granted[("perennial.dev", "modelversions")]
    # Node verbs and Cluster API come only with a ComputePool provider's component.
    assert ("", "nodes") not in granted
    assert not [key for key in granted if key[0] == "cluster.x-k8s.io"]
    assert not [key for key in granted if key[1] == "secrets"]
    bound = {b["roleRef"]["name"] for b in operators(rendered, "ClusterRoleBinding")}
    assert bound == set(roles)
    assert not [key for key in granted if key[0] == "kopf.dev"]


def test_users_roles_aggregate_into_view_and_edit(rendered: list[dict[str, Any]]) -> None:
    roles = {r["metadata"]["name"]: r for r in by_kind(rendered, "ClusterRole")}
    view, edit = roles["perennial-view"], roles["perennial-edit"]
    assert view["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-view"] == "true"
    assert edit["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-edit"] == "true"
    assert "rbac.authorization.k8s.io/aggregate-to-view" not in edit["metadata"]["labels"]
    view_verbs = {v for rule in view["rules"] for v in rule["verbs"]}
    assert view_verbs == {"get", "list", "watch"}
    # Users never write status (the operator's) nor ComputePools (cluster infrastructure).
    for rule in edit["rules"]:
        assert not [r for r in rule["resources"] if r.endswith("/status")]
        assert "computepools" not in rule["resources"]


def test_the_lease_is_granted_by_name_in_the_operators_namespace(
    rendered: list[dict[str, Any]],
) -> None:
    [lease_role] = operators(rendered, "Role")
    assert lease_role["metadata"]["namespace"] == "perennial-system"
    by_verb = {
        verb: rule.get("resourceNames")
        for rule in lease_role["rules"]
        for verb in rule["verbs"]
        if rule["resources"] == ["leases"]
    }
    assert by_verb == {
        "get": ["perennial-operator"],
        "update": ["perennial-operator"],
        "create": None,
    }
    [binding] = operators(rendered, "RoleBinding")
    assert binding["subjects"][0]["name"] == "perennial-operator"


def test_operator_pod_is_restricted(rendered: list[dict[str, Any]]) -> None:
    [deployment] = operators(rendered, "Deployment")
    assert deployment["spec"]["replicas"] == 2
    [pdb] = operators(rendered, "PodDisruptionBudget")
    assert pdb["spec"]["minAvailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    [container] = pod["containers"]
    ctx = container["securityContext"]
    assert ctx["allowPrivilegeEscalation"] is False
    assert ctx["readOnlyRootFilesystem"] is True
    assert ctx["capabilities"]["drop"] == ["ALL"]
    assert container["command"] == ["perennial-operator"]
    assert "--liveness=http://0.0.0.0:8080/healthz" in container["args"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["resources"]["requests"]
    [service] = operators(rendered, "Service")
    assert service["spec"]["ports"][0]["port"] == 9090
