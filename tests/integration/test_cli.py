"""The `perennial` CLI against the real control plane and the operator as a process
(tests/support/inferenceservice.py: a kubelet stand-in makes serving pods Ready).

promote writes spec.stage and the operator records the Event; rollback returns a
stage-tracking service to the version before; retry clears a rollback's rejection; status,
compare and lineage read it all back.
"""

from __future__ import annotations

from typing import Any

import pytest

from perennial_operator.api.group import API_VERSION
from perennial_operator.api.rejections import rejections_of
from support.argocd_health import health
from support.cli_process import perennial
from support.inferenceservice import (
    Behaviour,
    FakePods,
    fake_pods,
    modelversion,
    operator_options,
    service,
    service_events,
    serving_claim,
    wait_status,
)
from support.kstatus import check_health
from support.world import World

pytestmark = pytest.mark.integration
__all__ = ["fake_pods", "operator_options", "serving_claim"]  # fixtures


def stage(world: World, name: str) -> str:
    mv = world.kube.get(API_VERSION, "ModelVersion", world.ns, name) or {}
    return str(mv.get("spec", {}).get("stage"))


def stage_events(world: World, name: str) -> list[str]:
    return [e["message"] for e in world.kube.list("v1", "Event", world.ns)
            if e["involvedObject"]["name"] == name and e["reason"] == "StageChanged"]  # fmt: skip


@pytest.fixture
def cli(cluster: Any, world: World) -> Any:
    def run(*args: str) -> Any:
        return perennial(cluster.kubeconfig, world.ns, *args)

    return run


def test_promote_then_rollback_moves_the_service_and_back(world: World, cli: Any) -> None:
    modelversion(world, 1, stage="Production")
    modelversion(world, 2, stage="Staging")
    service(world, {"stage": "Production"}, replicas=1)
    wait_status(world, "v1 serving", phase="Ready", currentVersion=1, readyReplicas=1)

    out = cli("promote", "churn-v2", "--stage", "Production")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "modelversion/churn-v2 stage Staging -> Production"
    assert stage(world, "churn-v2") == "Production"
    world.wait(lambda: "stage Staging -> Production" in stage_events(world, "churn-v2"),
               "the operator's StageChanged Event on churn-v2")  # fmt: skip
    world.wait(lambda: stage(world, "churn-v1") == "Archived", "the operator archives v1")
    wait_status(world, "v2 serving", phase="Ready", currentVersion=2, timeout=90)

    # Argo CD's view of the same objects (manifests/argocd/ health.lua)
    assert health("InferenceService", world.get("InferenceService", "churn"))["status"] == "Healthy"
    mv = world.kube.get(API_VERSION, "ModelVersion", world.ns, "churn-v2") or {}
    assert health("ModelVersion", mv)["status"] == "Healthy"

    status = cli("status", "churn")
    assert status.returncode == 0, status.stderr
    lines = status.stdout.splitlines()
    assert any("churn-v2" in line and "Production" in line for line in lines), status.stdout
    assert any("churn-v1" in line and "Archived" in line for line in lines), status.stdout
    assert any("churn (Production)" in line and "churn-v2" in line for line in lines)

    back = cli("rollback", "churn")
    assert back.returncode == 0, back.stderr
    assert back.stdout.strip() == "modelversion/churn-v1 stage Archived -> Production"
    world.wait(lambda: stage(world, "churn-v2") == "Archived", "the operator archives v2")
    wait_status(world, "v1 serving again", phase="Ready", currentVersion=1, timeout=90)
    assert any("Production -> Archived" in m for m in stage_events(world, "churn-v2"))

    again = cli("promote", "churn-v1", "--stage", "Production")
    assert again.returncode == 0 and "nothing to do" in again.stdout


def test_retry_lets_a_rolled_back_version_roll_out_again(
    world: World, cli: Any, fake_pods: FakePods
) -> None:
    """A canary that breaches its error rate is rolled back and recorded on the ModelVersion;
    `perennial retry` sets the user's own annotation to that rollback's time, the service
    rolls the version out again, and a second breach is a new rejection the old retry does
    not clear."""
    fake_pods.behaviour[2] = Behaviour(ok=160, errors=40)
    rollout = {"strategy": "Canary", "steps": [50, 100], "stepSeconds": 1, "maxErrorRate": 0.05}
    modelversion(world, 1, stage="Production")
    modelversion(world, 2)
    service(world, {"stage": "Production"}, replicas=2, rollout=rollout)
    wait_status(world, "v1 serving", phase="Ready", currentVersion=1, readyReplicas=2)
    assert cli("promote", "churn-v2", "--stage", "Production").returncode == 0
    wait_status(world, "v2 rolled back", phase="RolledBack", currentVersion=1, timeout=90)
    check_health(world.get("InferenceService", "churn"), "Failed")
    (first,) = rejections_of(world.get("ModelVersion", "churn-v2"))
    assert first.service == "churn" and first.reason == "ErrorRateExceeded"

    refused = cli("retry", "churn", "churn-v1")
    assert refused.returncode == 1 and "has not rolled back churn-v1" in refused.stderr
    out = cli("retry", "churn", "2")
    assert out.returncode == 0, out.stderr
    assert f"retry.perennial.dev/churn={first.time}" in out.stdout
    assert "churn rolls it out again" in out.stdout
    mv = world.get("ModelVersion", "churn-v2")
    assert mv["metadata"]["annotations"]["retry.perennial.dev/churn"] == first.time
    managers = {e["manager"] for e in mv["metadata"]["managedFields"]}
    assert "perennial-cli" in managers  # the user's field manager, not the operator's

    def started_twice() -> bool:
        return [r for _, r, _ in service_events(world)].count("CanaryStarted") == 2

    world.wait(started_twice, "the retried version's second canary", timeout=60)
    world.wait(
        lambda: [r for _, r, _ in service_events(world)].count("RolledBack") == 2,
        "the second rollback", timeout=90,
    )  # fmt: skip
    (second,) = rejections_of(world.get("ModelVersion", "churn-v2"))
    assert second.time > first.time and not second.retried  # the old retry does not clear it
    wait_status(world, "v1 still serving", phase="RolledBack", currentVersion=1)


def test_rollback_of_a_pinned_service_is_refused(world: World, cli: Any) -> None:
    modelversion(world, 1)
    service(world, {"version": 1}, replicas=1)
    out = cli("rollback", "churn")
    assert out.returncode == 1
    assert "pins spec.model.version 1" in out.stderr
    assert "change the pinned version in Git" in out.stderr
    assert stage(world, "churn-v1") == "None"


def test_read_commands_and_their_errors(world: World, cli: Any) -> None:
    modelversion(world, 1)
    modelversion(world, 2)
    compare = cli("compare", "churn-v1", "churn-v2")
    assert compare.returncode == 0, compare.stderr
    version_row = next(line for line in compare.stdout.splitlines() if "model" in line)
    assert version_row.split()[1:3] == ["churn", "churn"]
    lineage = cli("lineage", "churn-v2")
    assert lineage.returncode == 0, lineage.stderr
    assert "Lineage of churn-v2" in lineage.stdout
    assert "started by: unknown" in lineage.stdout  # registered by hand: no TrainingJob
    missing = cli("lineage", "churn-v9")
    assert missing.returncode == 1
    assert f"ModelVersion churn-v9 not found in namespace {world.ns}" in missing.stderr
    bad = cli("promote", "churn-v1", "--stage", "Prod")
    assert bad.returncode == 2 and "Invalid value for '--stage'" in bad.stderr
