"""A RetrainPolicy's TrainingJobs are its history: spec.historyLimit bounds them, and
deleting the policy keeps them (no owner reference for the garbage collector to follow).
The real operator and the real kube-controller-manager (its garbage collector) run."""

from __future__ import annotations

import time
from typing import Any

import pytest

from perennial_operator.api.group import API_VERSION
from support.world import World, resource

pytestmark = pytest.mark.integration

LABELS = {"perennial.dev/retrainpolicy": "keep", "app.kubernetes.io/managed-by": "perennial"}
SPEC = {"model": "churn", "task": "classification", "algorithm": "random_forest",
        "dataset": {"uri": "builtin://breast_cancer", "target": "target"}}  # fmt: skip


def finished(n: int, phase: str) -> dict[str, Any]:
    status: dict[str, Any] = {"phase": phase, "observedGeneration": 1}
    if phase == "Succeeded":
        status["modelVersion"] = f"churn-v{n}"
    return status


def names(world: World) -> list[str]:
    return sorted(t["metadata"]["name"] for t in world.list("TrainingJob"))


def test_the_oldest_finished_jobs_go_and_the_rest_outlive_the_policy(world: World) -> None:
    assert world.op is not None
    world.op.kill()  # the jobs exist, finished, before the operator sees them
    for n, phase in ((1, "Succeeded"), (2, "Failed"), (3, "Succeeded"), (4, "Succeeded")):
        world.create(resource("TrainingJob", f"keep-{n}", SPEC, labels=LABELS))
        world.kube.patch_status(API_VERSION, "TrainingJob", world.ns, f"keep-{n}",
                                finished(n, phase))  # fmt: skip
        time.sleep(1.1)  # creationTimestamp has seconds: the order is the creation order
    world.create(resource("TrainingJob", "by-hand", SPEC))  # no policy's: never pruned
    world.kube.patch_status(API_VERSION, "TrainingJob", world.ns, "by-hand", finished(9, "Failed"))
    policy = {"inferenceService": "nowhere", "template": SPEC, "historyLimit": 2,
              "triggers": {"drift": {"psi": 0.2}}}  # fmt: skip
    world.create(resource("RetrainPolicy", "keep", policy))
    world.op.start()
    kept = ["by-hand", "keep-3", "keep-4"]
    world.wait(lambda: names(world) == kept, f"only {kept} left", timeout=90)

    world.kube.delete(API_VERSION, "RetrainPolicy", world.ns, "keep")
    world.wait(lambda: not world.get("RetrainPolicy", "keep"), "the policy deleted")
    # The garbage collector acts within a second or two on owned objects; give it five.
    time.sleep(5)
    assert names(world) == kept
    assert all("ownerReferences" not in t["metadata"] for t in world.list("TrainingJob"))
