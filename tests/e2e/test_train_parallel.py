"""AutoML fanned out for real: the same search on breast_cancer as one pod
(automl.parallelism 1) and as plan → Indexed Job of trial pods → finish (parallelism 4),
every pod a container of the built runtime image on the real node (or a host process with
--e2e-runtime=local; tests/support/pod_runtimes.py). Both must pick a model of the same
quality; the fanned-out one fits each candidate once.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from perennial_operator.api.group import API_VERSION
from perennial_runtime import contract
from support.world import World

pytestmark = pytest.mark.e2e
MODEL = "bcp"
BUDGET = 30  # seconds, each search: the same for both


def trainingjob(name: str, parallelism: int) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "TrainingJob",
        "metadata": {"name": name},
        "spec": {
            "model": MODEL,
            "task": "classification",
            "algorithm": "auto",
            "automl": {"parallelism": parallelism, "timeBudgetSeconds": BUDGET},
            "dataset": {"uri": "builtin://breast_cancer", "target": "target", "seed": 7},
            "resources": {"cpu": "500m", "memory": "1Gi"},
            "backoffLimit": 1,
            "activeDeadlineSeconds": 900,
        },
    }


def trained(world: World, name: str, parallelism: int) -> dict[str, Any]:
    world.create(trainingjob(name, parallelism))
    progress: set[str] = set()

    def registered() -> dict[str, Any] | None:
        status = world.get("TrainingJob", name).get("status", {})
        progress.add(str(status.get("progress") or ""))
        assert status.get("phase") != "Failed", status.get("message")
        return status if status.get("modelVersion") else None

    status: dict[str, Any] = world.wait(registered, f"TrainingJob {name} registered", 600)
    status["seen"] = progress
    return status


def model_dir(runtime: Any, world: World, uri: str) -> Path:
    claim, _, path = uri.removeprefix("pvc://").partition("/")
    return Path(runtime.claim_folder(world.ns, claim)) / path


def test_parallelism_four_picks_a_model_of_the_single_pods_quality(
    world: World, pod_runtime: Any, artifacts: Path
) -> None:
    one = trained(world, "bcp-1", 1)
    four = trained(world, "bcp-4", 4)
    assert four["metrics"]["roc_auc"] == pytest.approx(one["metrics"]["roc_auc"], abs=0.005)
    assert four["metrics"]["roc_auc"] > 0.95

    # The same kind of artifact, registered the same way.
    mv = world.get("ModelVersion", four["modelVersion"])
    folder = model_dir(pod_runtime, world, mv["spec"]["artifact"]["uri"])
    result = contract.verify_artifacts(folder)
    single = contract.verify_artifacts(
        model_dir(
            pod_runtime,
            world,
            world.get("ModelVersion", one["modelVersion"])["spec"]["artifact"]["uri"],
        )  # fmt: skip
    )
    assert set(result) == set(single) and result["automl"]["evaluated"] >= 1

    # Each candidate of each rung ran in its own pod, once.
    state = folder / ".automl"
    for listed in state.glob("rung-*/candidates.json"):
        rung = listed.parent.name
        candidates = len(json.loads(listed.read_text()))
        pods = world.list("Pod", f"perennial.dev/automl-step={rung}")
        assert len(pods) == candidates, (rung, [p["metadata"]["name"] for p in pods])
        assert len(list(listed.parent.glob("trial-*.json"))) == candidates
        assert all(p["status"]["phase"] == "Succeeded" for p in pods)
    assert any(s.startswith("rung 0: ") for s in four["seen"]), four["seen"]
    print(
        f"\nroc_auc one pod {one['metrics']['roc_auc']:.4f}, fanned out "
        f"{four['metrics']['roc_auc']:.4f}; evaluated {single['automl']['evaluated']} vs "
        f"{result['automl']['evaluated']}"
    )
