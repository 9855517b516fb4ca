"""manifests/studio/ (in the base) is read-only and restricted; the studio-actions component
adds exactly the verbs the actions write, and --allow-actions. Rendered by kubectl kustomize
(a kubectl on PATH or the one `make k8s-build` built; without one this fails, not skips)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from perennial_studio.cli import parser

pytestmark = pytest.mark.unit
REPO = Path(__file__).resolve().parents[2]
READ = {"get", "list", "watch"}


def kubectl() -> str:
    found = shutil.which("kubectl")
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    built = sorted((cache / "perennial" / "k8s").glob("*/bin/kubectl"))
    assert found or built, "no kubectl: run `make k8s-build`"
    return found or str(built[-1])


def render(folder: Path) -> list[dict[str, Any]]:
    out = subprocess.run(
        [kubectl(), "kustomize", str(folder)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


def named(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    [doc] = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    return doc


def grants(role: dict[str, Any]) -> dict[tuple[str, str], set[str]]:
    found: dict[tuple[str, str], set[str]] = {}
    for rule in role["rules"]:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                found.setdefault((group, resource), set()).update(rule["verbs"])
    return found


@pytest.fixture(scope="module")
def base() -> list[dict[str, Any]]:
    return render(REPO / "manifests")


@pytest.fixture(scope="module")
def with_actions(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """What docs/studio.md tells an admin to write: the base plus the component."""
    root = tmp_path_factory.mktemp("install")
    shutil.copytree(REPO / "manifests", root / "manifests")
    shutil.copytree(REPO / "crds", root / "crds")
    (root / "kustomization.yaml").write_text(
        yaml.safe_dump({"resources": ["manifests"], "components": ["manifests/studio-actions"]})
    )
    return render(root)


def test_the_studio_is_read_only_by_default(base: list[dict[str, Any]]) -> None:
    granted = grants(named(base, "ClusterRole", "perennial-studio"))
    assert all(verbs <= READ for verbs in granted.values()), granted
    assert not any(resource in ("secrets", "configmaps") for _, resource in granted), granted
    assert granted[("", "pods/log")] == {"get"}
    for plural in (
        "trainingjobs",
        "modelversions",
        "inferenceservices",
        "retrainpolicies",
        "computepools",
    ):
        assert {"list", "watch"} <= granted[("perennial.dev", plural)]
    binding = named(base, "ClusterRoleBinding", "perennial-studio")
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "perennial-studio", "namespace": "perennial-system"}
    ]
    args = named(base, "Deployment", "perennial-studio")["spec"]["template"]["spec"]["containers"][
        0
    ]["args"]
    assert "--allow-actions" not in args


def test_the_actions_component_adds_exactly_the_verbs_they_use(
    with_actions: list[dict[str, Any]],
) -> None:
    granted = grants(named(with_actions, "ClusterRole", "perennial-studio-actions"))
    assert granted == {
        ("perennial.dev", "modelversions"): {"patch"},
        ("perennial.dev", "retrainpolicies"): {"patch"},
        ("", "events"): {"create"},
    }
    container = named(with_actions, "Deployment", "perennial-studio")["spec"]["template"]["spec"][
        "containers"
    ][0]
    assert "--allow-actions" in container["args"]
    parser().parse_args(container["args"])  # every argument is one the CLI takes


def test_the_studio_pod_passes_pod_security_restricted(base: list[dict[str, Any]]) -> None:
    deployment = named(base, "Deployment", "perennial-studio")
    pod = deployment["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "perennial-studio"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    [container] = pod["containers"]
    assert container["image"] == "perennial/operator:0.1.0"
    assert container["command"] == ["perennial-studio"]
    ctx = container["securityContext"]
    assert ctx["allowPrivilegeEscalation"] is False and ctx["readOnlyRootFilesystem"] is True
    assert ctx["capabilities"]["drop"] == ["ALL"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    parser().parse_args(container["args"])
    service = named(base, "Service", "perennial-studio")
    assert service["spec"]["ports"][0]["targetPort"] == "http"
