"""The Argo CD health checks (manifests/argocd/) run in a real Lua interpreter over their own
fixtures, the way Argo CD's resource_customizations tests run them: every health_test.yaml
case gives the expected status and message."""

from __future__ import annotations

import importlib.util
import subprocess
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from support.argocd_health import GROUP_DIR, health
from support.kubectl_binary import find_kubectl

pytestmark = pytest.mark.unit
REPO = Path(__file__).resolve().parents[2]
ARGOCD = REPO / "manifests" / "argocd"
KINDS = ("TrainingJob", "ModelVersion", "InferenceService", "RetrainPolicy", "ComputePool")


def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("argocd_generate", ARGOCD / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def cases() -> list[Any]:
    out = []
    for kind in KINDS:
        tests = yaml.safe_load((GROUP_DIR / kind / "health_test.yaml").read_text())["tests"]
        for case in tests:
            out.append(pytest.param(kind, case, id=f"{kind}-{Path(case['inputPath']).stem}"))
    return out


@pytest.mark.parametrize(("kind", "case"), cases())
def test_health_of_each_fixture(kind: str, case: dict[str, Any]) -> None:
    obj = yaml.safe_load((GROUP_DIR / kind / case["inputPath"]).read_text())
    assert obj["kind"] == kind
    assert health(kind, obj) == case["healthStatus"]


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_has_the_states_argo_cd_shows(kind: str) -> None:
    tests = yaml.safe_load((GROUP_DIR / kind / "health_test.yaml").read_text())["tests"]
    assert len(tests) >= 4
    fixtures = {Path(t["inputPath"]).stem: t["healthStatus"] for t in tests}
    statuses = {s["status"] for s in fixtures.values()}
    assert {"Healthy", "Progressing", "Degraded"} <= statuses
    if kind == "RetrainPolicy":
        assert "Suspended" in statuses
    assert fixtures["deleting"]["message"] == "Pending deletion"
    behind = [t for t in tests if _generation_ahead(GROUP_DIR / kind / t["inputPath"])]
    assert behind and all(t["healthStatus"]["status"] == "Progressing" for t in behind)
    listed = {f"testdata/{p.name}" for p in (GROUP_DIR / kind / "testdata").glob("*.yaml")}
    assert listed == {t["inputPath"] for t in tests}, "every fixture is in health_test.yaml"


def _generation_ahead(path: Path) -> bool:
    obj = yaml.safe_load(path.read_text())
    observed = (obj.get("status") or {}).get("observedGeneration")
    return obj["metadata"].get("deletionTimestamp") is None and observed != obj["metadata"].get(
        "generation"
    )


def test_a_ready_condition_about_an_older_generation_is_not_healthy() -> None:
    mv = yaml.safe_load((GROUP_DIR / "ModelVersion" / "testdata" / "ready.yaml").read_text())
    assert health("ModelVersion", mv)["status"] == "Healthy"
    mv["metadata"]["generation"] = 2
    mv["status"]["observedGeneration"] = 2  # status caught up, but Ready was not rewritten
    mv["status"]["phase"] = "Pending"
    assert health("ModelVersion", mv)["status"] == "Progressing"


def test_scripts_are_generated_from_src() -> None:
    assert generator().main(["--check"]) == 0, "run: python manifests/argocd/generate.py"


def test_kustomization_puts_every_script_into_argocd_cm() -> None:
    kubectl = find_kubectl()
    assert kubectl is not None, "no kubectl: run `make k8s-build` (or install kubectl)"
    out = subprocess.run([str(kubectl), "kustomize", str(ARGOCD)], capture_output=True,
                         text=True, timeout=120, check=False)  # fmt: skip
    assert out.returncode == 0, out.stderr
    [cm] = [d for d in yaml.safe_load_all(out.stdout) if d]
    assert (cm["kind"], cm["metadata"]["name"], cm["metadata"]["namespace"]) == (
        "ConfigMap", "argocd-cm", "argocd",
    )  # fmt: skip
    assert cm["metadata"]["labels"]["app.kubernetes.io/part-of"] == "argocd"
    assert cm["data"] == {
        f"resource.customizations.health.perennial.dev_{kind}": (
            GROUP_DIR / kind / "health.lua"
        ).read_text()
        for kind in KINDS
    }
