"""The GitOps example's CI workflow, run as CI would: every `run:` step of
examples/gitops/.github/workflows/perennial.yaml (all but installing the CLI, which is this
checkout's), in a copy of the example. It passes as committed and fails on broken copies."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from support.kubectl_binary import find_kubectl

pytestmark = pytest.mark.unit
REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "gitops"
WORKFLOW = EXAMPLE / ".github" / "workflows" / "perennial.yaml"


def workflow() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(WORKFLOW.read_text())
    return doc


def steps() -> list[dict[str, Any]]:
    [job] = workflow()["jobs"].values()
    return [step for step in job["steps"] if "run" in step and step.get("id") != "install"]


def run_workflow(repo: Path) -> list[subprocess.CompletedProcess[str]]:
    """Each step in order, as `bash -e` in the repository root; stops at the first failure."""
    kubectl = find_kubectl()
    assert kubectl is not None, "no kubectl: run `make k8s-build` (or install kubectl)"
    path = os.pathsep.join([str(Path(sys.executable).parent), str(kubectl.parent),
                            os.environ.get("PATH", "")])  # fmt: skip
    env = {**os.environ, **workflow().get("env", {}), "PATH": path, "CI": "true"}
    results = []
    for step in steps():
        done = subprocess.run(["bash", "-e", "-c", step["run"]], cwd=repo, env=env,
                              capture_output=True, text=True, timeout=600, check=False)  # fmt: skip
        results.append(done)
        if done.returncode != 0:
            break
    return results


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    copy = tmp_path / "repo"
    shutil.copytree(EXAMPLE, copy)
    return copy


def test_the_workflow_runs_validate_and_check_data_on_pull_requests() -> None:
    doc = workflow()
    triggers = doc.get("on", doc.get(True))  # YAML 1.1 (PyYAML) reads the key `on` as true
    assert "pull_request" in triggers
    [job] = doc["jobs"].values()
    skipped = [s for s in job["steps"] if "run" in s and s not in steps()]
    assert [s["id"] for s in skipped] == ["install"]
    commands = " ".join(s["run"] for s in steps())
    assert "perennial validate" in commands and "perennial check-data" in commands


def test_the_example_passes(repo: Path) -> None:
    results = run_workflow(repo)
    assert len(results) == len(steps())
    for done in results:
        assert done.returncode == 0, done.stdout + done.stderr
    assert "Validated" in results[-1].stdout and "400 rows" in results[-1].stdout


def test_a_bad_manifest_fails_the_validate_step(repo: Path) -> None:
    isvc = repo / "base" / "inferenceservice.yaml"
    isvc.write_text(
        isvc.read_text().replace("stage: Production}", "stage: Production, version: 3}")
    )
    [validate] = run_workflow(repo)
    assert validate.returncode == 1
    assert (
        "base/inferenceservice.yaml:9: InferenceService/churn: spec.model: Invalid value: "
        "spec.model needs exactly one of version or stage" in validate.stdout
    )


def test_an_overlay_that_breaks_a_rule_fails_the_validate_step(repo: Path) -> None:
    overlay = repo / "overlays" / "production" / "kustomization.yaml"
    overlay.write_text(overlay.read_text().replace("steps: [10, 50, 100]", "steps: [10, 50]"))
    [validate] = run_workflow(repo)
    assert validate.returncode == 1
    assert "overlays/production (kustomize output)" in validate.stdout
    assert "spec.rollout.steps must end at 100" in validate.stdout


def test_data_that_fails_its_checks_fails_the_check_data_step(repo: Path) -> None:
    data = repo / "data" / "datasets" / "churn" / "train.csv"
    lines = data.read_text().splitlines()
    data.write_text("\n".join(lines[:201]).replace("two-year", "three-year") + "\n")
    validate, check = run_workflow(repo)
    assert validate.returncode == 0
    assert check.returncode == 3  # the trainer's EXIT_DATA_INVALID
    assert "dataset_rows_below_minimum" in check.stdout
    assert "three-year" in check.stdout  # the unknown category is named
