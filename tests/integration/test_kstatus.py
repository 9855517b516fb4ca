"""Ready and Stalled as the real operator writes them, read the way kstatus (Flux, kpt) and
Argo CD's health.lua read them (tests/support/kstatus.py), for the states the other cluster
tests do not reach: a ModelVersion with a bad reference, RetrainPolicies that
cannot work, wait for their service, or are suspended, and a TrainingJob finished before
these conditions existed. (TrainingJob, InferenceService and ComputePool states are checked
where their own tests reach them.)"""

from __future__ import annotations

from typing import Any

import pytest

from perennial_operator.api.group import API_VERSION
from support.kstatus import check_health, compute
from support.world import World, resource

pytestmark = pytest.mark.integration


def modelversion(name: str, uri: str) -> dict[str, Any]:
    spec = {"model": "churn", "version": 1, "stage": "None",
            "artifact": {"uri": uri, "sha256": "ab" * 32, "format": "onnx"}}  # fmt: skip
    return resource("ModelVersion", name, spec)


def policy(name: str, **spec: Any) -> dict[str, Any]:
    template = {"model": "churn", "task": "classification",
                "dataset": {"uri": "builtin://breast_cancer", "target": "target"}}  # fmt: skip
    return resource(
        "RetrainPolicy",
        name,
        {"inferenceService": "nowhere", "template": template,
         "triggers": {"drift": {"psi": 0.2}}, **spec},
    )  # fmt: skip


def settled(world: World, kind: str, name: str, expected: str) -> dict[str, Any]:
    """The object once the operator observed its generation and kstatus says `expected`
    (before any status kstatus calls a custom resource Current: nothing says otherwise)."""

    def ready() -> dict[str, Any] | None:
        obj = world.get(kind, name)
        observed = (obj.get("status") or {}).get("observedGeneration")
        if observed != obj["metadata"]["generation"] or compute(obj)[0] != expected:
            return None
        return obj

    return world.wait(ready, f"{kind} {name} {expected}")


def test_a_bad_reference_is_stalled_and_stays_so_through_other_edits(world: World) -> None:
    """spec.artifact is immutable: only a new ModelVersion can fix it. A stage change (a new
    generation) is observed, and the version is still Failed, not Progressing forever."""
    world.create(modelversion("churn-v1", "ftp://models/churn"))
    world.create(modelversion("churn-v2", "pvc://models/churn"))
    check_health(settled(world, "ModelVersion", "churn-v2", "Current"), "Current")
    mv = settled(world, "ModelVersion", "churn-v1", "Failed")
    assert "unsupported scheme" in check_health(mv, "Failed")["message"]
    world.kube.patch(API_VERSION, "ModelVersion", world.ns, "churn-v1",
                     {"spec": {"stage": "Staging"}})  # fmt: skip
    staged = world.wait(
        lambda: (
            (m := world.get("ModelVersion", "churn-v1"))
            and m["status"].get("observedGeneration") == 2
            and m
        ),
        "the stage change observed",
    )
    check_health(staged, "Failed")
    assert [h["stage"] for h in staged["status"]["stageHistory"]] == ["None", "Staging"]


def test_retrainpolicies_that_cannot_work_wait_or_are_suspended(world: World) -> None:
    world.create(policy("bad-cron", triggers={"schedule": "61 * * * *"}))
    world.create(policy("no-service"))
    world.create(policy("paused", suspend=True))
    bad = settled(world, "RetrainPolicy", "bad-cron", "Failed")
    assert "not a valid cron expression" in check_health(bad, "Failed")["message"]
    waiting = settled(world, "RetrainPolicy", "no-service", "InProgress")
    assert (
        "InferenceService nowhere does not exist" in check_health(waiting, "InProgress")["message"]
    )
    paused = settled(world, "RetrainPolicy", "paused", "Current")
    assert check_health(paused, "Current", argocd="Suspended")["status"] == "Suspended"
    # The user fixes the schedule: Stalled goes, nothing else is needed.
    world.kube.patch(API_VERSION, "RetrainPolicy", world.ns, "bad-cron",
                     {"spec": {"triggers": {"schedule": "0 3 * * 0"}}})  # fmt: skip
    fixed = world.wait(
        lambda: (
            (p := world.get("RetrainPolicy", "bad-cron"))
            and p["status"].get("observedGeneration") == 2
            and compute(p)[0] != "Failed"
            and p
        ),
        "the fixed schedule observed",
    )
    assert "Stalled" not in {c["type"] for c in fixed["status"]["conditions"]}


def test_a_job_finished_before_ready_existed_gets_it_and_never_runs_again(
    world: World,
) -> None:
    """An upgrade: a Succeeded TrainingJob whose status has no Ready (and whose Job is long
    gone) gets Ready from the restarted operator, and no new Job."""
    assert world.op is not None
    world.op.kill()
    spec = {"model": "churn", "task": "classification", "algorithm": "random_forest",
            "dataset": {"uri": "builtin://breast_cancer", "target": "target"}}  # fmt: skip
    world.create(resource("TrainingJob", "old", spec))
    legacy = {
        "phase": "Succeeded",
        "message": "trained and registered as churn-v7",
        "modelVersion": "churn-v7",
        "observedGeneration": 1,
        "conditions": [{"type": "Complete", "status": "True", "reason": "TrainingSucceeded",
                        "message": "training finished", "observedGeneration": 1,
                        "lastTransitionTime": "2025-01-01T00:00:00Z"}],
    }  # fmt: skip
    world.kube.patch_status(API_VERSION, "TrainingJob", world.ns, "old", legacy)
    world.op.start()
    tj = world.wait(
        lambda: (
            (t := world.get("TrainingJob", "old"))
            and any(c["type"] == "Ready" for c in t["status"]["conditions"])
            and t
        ),
        "Ready on the old TrainingJob",
    )
    assert check_health(tj, "Current")["message"] == "registered as churn-v7"
    assert tj["status"]["phase"] == "Succeeded" and tj["status"]["modelVersion"] == "churn-v7"
    assert world.list("Job") == [] and world.list("ConfigMap", "perennial.dev/trainingjob") == []
