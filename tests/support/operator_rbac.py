"""The operator's RBAC from manifests/, installed on the test cluster, and a kubeconfig that
authenticates as its ServiceAccount (a real token from the TokenRequest API).

The operator fixture (cluster_fixtures.py) runs the operator with that kubeconfig, so every
integration test that uses it exercises the narrowed role as a namespaced install grants it
(manifests/components/namespaced): the namespaced verbs by a RoleBinding in the test's
namespace only; cluster-wide perennial-operator-cluster and the ComputePool components' node
roles (the tests' pools use the kwok provider, and the Cluster API one is unit-tested).
"""

from __future__ import annotations

import copy
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from support.poll import until

REPO = Path(__file__).resolve().parents[2]
MANIFESTS = REPO / "manifests"
SERVICE_ACCOUNT = "perennial-operator"
SA_NAMESPACE = "perennial-system"
USER = f"system:serviceaccount:{SA_NAMESPACE}:{SERVICE_ACCOUNT}"
# The namespaced component's example namespace, bound per test namespace instead.
EXAMPLE_NAMESPACE = "ml-team"
SOURCES = (
    "namespace.yaml",
    "rbac.yaml",
    "components/computepool-kwok/rbac.yaml",
    "components/computepool-clusterapi/rbac.yaml",
    "components/namespaced/rolebindings.yaml",
)


def _documents(relative: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((MANIFESTS / relative).read_text()) if d]


def namespaced_install() -> list[dict[str, Any]]:
    """What a namespaced install applies, minus the example namespace's RoleBinding: the
    cluster-wide binding of the namespaced verbs is left out, as the component deletes it."""
    docs = [d for source in SOURCES for d in _documents(source)]
    return [
        d
        for d in docs
        if not (d["kind"] == "ClusterRoleBinding" and d["metadata"]["name"] == SERVICE_ACCOUNT)
        and d["metadata"].get("namespace") != EXAMPLE_NAMESPACE
    ]


def watched_namespace_binding(namespace: str) -> dict[str, Any]:
    """The component's RoleBinding, for `namespace`."""
    (binding,) = [
        d
        for d in _documents("components/namespaced/rolebindings.yaml")
        if d["metadata"].get("namespace") == EXAMPLE_NAMESPACE
    ]
    binding = copy.deepcopy(binding)
    binding["metadata"]["namespace"] = namespace
    return binding


def kubeconfig_with_token(admin: Path, token: str, out: Path) -> Path:
    """The admin kubeconfig's cluster (server, CA), authenticated by `token` instead."""
    config = yaml.safe_load(admin.read_text())
    context = next(c for c in config["contexts"] if c["name"] == config["current-context"])
    cluster = next(c for c in config["clusters"] if c["name"] == context["context"]["cluster"])
    out.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [cluster],
                "users": [{"name": SERVICE_ACCOUNT, "user": {"token": token}}],
                "contexts": [
                    {
                        "name": SERVICE_ACCOUNT,
                        "context": {"cluster": cluster["name"], "user": SERVICE_ACCOUNT},
                    }
                ],
                "current-context": SERVICE_ACCOUNT,
            }
        )
    )
    out.chmod(0o600)
    return out


def install(
    kubectl: Callable[..., subprocess.CompletedProcess[str]], admin: Path, out: Path
) -> Path:
    """Apply the RBAC and return a kubeconfig for the ServiceAccount. `kubectl` is
    TestCluster.kubectl."""
    body = yaml.safe_dump_all(namespaced_install())
    kubectl("apply", "--server-side", "--force-conflicts", "-f", "-", stdin=body)

    def token() -> str | None:
        made = kubectl(
            "create", "token", SERVICE_ACCOUNT, "-n", SA_NAMESPACE, "--duration=24h", check=False
        )
        return made.stdout.strip() if made.returncode == 0 else None

    return kubeconfig_with_token(admin, until(token, timeout=30, message="a token"), out)


def bind(kubectl: Callable[..., subprocess.CompletedProcess[str]], namespace: str) -> None:
    """Grant the operator its namespaced verbs in `namespace` (a watched namespace)."""
    kubectl("apply", "-f", "-", stdin=yaml.safe_dump(watched_namespace_binding(namespace)))
