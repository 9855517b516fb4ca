"""The newData trigger for real: a model trained by a real perennial-train pod is served; a
RetrainPolicy's probe pods run the real `perennial-train fingerprint` on the same file; the
unchanged file fires nothing, and a changed one starts a TrainingJob whose trainer hashes
the data exactly as the probe did.

The control plane is real; the pods run on a real node (or the local runtime); either way
a claim is a folder on this host shared by the pods of a namespace, so the test edits the
dataset in place.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sklearn.datasets import load_iris

from perennial_operator.api.group import API_VERSION
from perennial_operator.config import DEFAULT_ARTIFACT_PVC
from perennial_runtime import contract
from support.world import World, resource

pytestmark = pytest.mark.e2e

DATASET = f"pvc://{DEFAULT_ARTIFACT_PVC}/data/iris.csv"
TEMPLATE = {
    "model": "iris",
    "task": "classification",
    "algorithm": "logistic_regression",
    "dataset": {"uri": DATASET, "target": "species"},
    "resources": {"cpu": "100m", "memory": "256Mi"},
    "backoffLimit": 1,
}


def policy_status(world: World) -> dict[str, Any]:
    return world.status("RetrainPolicy", "iris")


def checked(world: World) -> dict[str, Any]:
    return world.condition("RetrainPolicy", "iris", "DatasetChecked")


def test_the_probe_and_the_trainer_agree_and_changed_data_retrains(
    world: World, artifacts: Path
) -> None:
    csv = artifacts / "data" / "iris.csv"
    csv.parent.mkdir(parents=True, exist_ok=True)
    frame = load_iris(as_frame=True).frame.rename(columns={"target": "species"})
    frame.to_csv(csv, index=False)

    world.create(resource("TrainingJob", "iris-1", TEMPLATE))
    world.wait(
        lambda: world.get("TrainingJob", "iris-1").get("status", {}).get("modelVersion"),
        "iris-1 trained and registered",
        timeout=120,
    )
    served = world.get("ModelVersion", "iris-v1")["spec"]["source"]["dataset"]
    assert served["sha256"] == contract.sha256_file(csv)
    world.create(
        resource(
            "InferenceService",
            "iris",
            {
                "model": {"name": "iris", "version": 1},
                "replicas": 1,
                "resources": {"cpu": "200m", "memory": "256Mi"},
            },
        )
    )
    world.wait(
        lambda: (
            world.get("InferenceService", "iris").get("status", {}).get("currentModelVersion")
            == "iris-v1"
        ),
        "iris-v1 served",
        timeout=120,
    )

    world.create(
        resource(
            "RetrainPolicy",
            "iris",
            {
                "inferenceService": "iris",
                "template": TEMPLATE,
                "cooldownSeconds": 0,
                "triggers": {"newData": {"pollSeconds": 10}},
            },
        )
    )
    # A real probe pod hashed the file the real trainer hashed: the same sha256 and rows.
    world.wait(
        lambda: checked(world).get("reason") == "DatasetUnchanged",
        "DatasetChecked=True DatasetUnchanged",
        timeout=120,
    )
    record = policy_status(world)["newData"]
    assert (
        (record["sha256"], record["rows"])
        == (served["sha256"], served["rows"])
        == (served["sha256"], 150)
    )
    assert (
        world.kube.list(API_VERSION, "TrainingJob", world.ns, "perennial.dev/retrainpolicy=iris")
        == []
    )

    frame.head(20).to_csv(csv, mode="a", header=False, index=False)  # new rows arrive
    new_sha = contract.sha256_file(csv)
    trigger = world.wait(
        lambda: (
            (t := policy_status(world).get("lastTrigger")) and t.get("reason") == "NewData" and t
        ),
        "NewData fired",
        timeout=120,
    )
    assert trigger["detail"] == f"dataset sha256 {served['sha256'][:8]}…→{new_sha[:8]}… (170 rows)"
    # The trigger is recorded in status before its TrainingJob is created (crash safety),
    # so the job appears a moment after the trigger.
    (job,) = world.wait(
        lambda: world.kube.list(
            API_VERSION, "TrainingJob", world.ns, "perennial.dev/retrainpolicy=iris"
        ),
        "the retraining TrainingJob created",
        timeout=30,
    )
    name = job["metadata"]["name"]
    status = world.wait(
        lambda: (s := world.get("TrainingJob", name).get("status", {})).get("modelVersion") and s,
        f"{name} trained",
        timeout=120,
    )
    assert status["dataset"]["sha256"] == new_sha == policy_status(world)["newData"]["sha256"]
    assert status["dataset"]["rows"] == 170
