"""The newData trigger for real: a model trained by a real perennial-train pod is served; a
RetrainPolicy's probe pods run the real `perennial-train fingerprint` on the same file; the
unchanged file fires nothing, and a changed one starts a TrainingJob whose trainer hashes
the data exactly as the probe did.

The control plane is real; the pods run through the local runtime, which shares a claim's
folder between the pods of a namespace (so the test edits the dataset in place).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sklearn.datasets import load_iris

from perennial_operator.api.group import API_VERSION
from perennial_operator.config import DEFAULT_ARTIFACT_PVC
from perennial_operator.k8s.kube import Kube
from perennial_runtime import contract
from support.poll import until

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


class World:
    def __init__(self, kube: Kube, ns: str, operator: Any, runtime: Any) -> None:
        self.kube, self.ns, self.operator, self.runtime = kube, ns, operator, runtime

    def create(self, kind: str, name: str, spec: dict[str, Any]) -> None:
        meta = {"name": name, "namespace": self.ns}
        self.kube.create({"apiVersion": API_VERSION, "kind": kind, "metadata": meta, "spec": spec})

    def get(self, kind: str, name: str) -> dict[str, Any]:
        return self.kube.get(API_VERSION, kind, self.ns, name) or {}

    def policy_status(self) -> dict[str, Any]:
        return self.get("RetrainPolicy", "iris").get("status") or {}

    def checked(self) -> dict[str, Any]:
        conditions = self.policy_status().get("conditions") or []
        return next((c for c in conditions if c["type"] == "DatasetChecked"), {})

    def describe(self) -> str:
        pods = self.kube.list("v1", "Pod", self.ns, "perennial.dev/newdata-probe")
        probes = [
            (p["metadata"]["name"], p.get("status", {}).get("containerStatuses")) for p in pods
        ]
        return (
            json.dumps({"policy": self.policy_status(), "probes": probes}, indent=1)[-5000:]
            + "\n--- operator ---\n"
            + self.operator.log_tail(30)
            + "\n--- local runtime ---\n"
            + self.runtime.log_tail(30)
        )

    def wait(self, fn: Any, message: str, timeout: float = 120) -> Any:
        return until(fn, timeout=timeout, message=message, describe=self.describe)


@pytest.fixture
def world(kube: Kube, namespace: str, operator: Any, local_runtime: Any, artifacts: Path) -> World:
    return World(kube, namespace, operator, local_runtime)


def test_the_probe_and_the_trainer_agree_and_changed_data_retrains(
    world: World, artifacts: Path
) -> None:
    csv = artifacts / "data" / "iris.csv"
    csv.parent.mkdir(parents=True, exist_ok=True)
    frame = load_iris(as_frame=True).frame.rename(columns={"target": "species"})
    frame.to_csv(csv, index=False)

    world.create("TrainingJob", "iris-1", TEMPLATE)
    world.wait(
        lambda: world.get("TrainingJob", "iris-1").get("status", {}).get("modelVersion"),
        "iris-1 trained and registered",
    )
    served = world.get("ModelVersion", "iris-v1")["spec"]["source"]["dataset"]
    assert served["sha256"] == contract.sha256_file(csv)
    world.create(
        "InferenceService",
        "iris",
        {
            "model": {"name": "iris", "version": 1},
            "replicas": 1,
            "resources": {"cpu": "200m", "memory": "256Mi"},
        },
    )
    world.wait(
        lambda: (
            world.get("InferenceService", "iris").get("status", {}).get("currentModelVersion")
            == "iris-v1"
        ),
        "iris-v1 served",
    )

    world.create(
        "RetrainPolicy",
        "iris",
        {
            "inferenceService": "iris",
            "template": TEMPLATE,
            "cooldownSeconds": 0,
            "triggers": {"newData": {"pollSeconds": 10}},
        },
    )
    # A real probe pod hashed the file the real trainer hashed: the same sha256 and rows.
    world.wait(
        lambda: world.checked().get("reason") == "DatasetUnchanged",
        "DatasetChecked=True DatasetUnchanged",
    )
    record = world.policy_status()["newData"]
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
            (t := world.policy_status().get("lastTrigger")) and t.get("reason") == "NewData" and t
        ),
        "NewData fired",
    )
    assert trigger["detail"] == f"dataset sha256 {served['sha256'][:8]}…→{new_sha[:8]}… (170 rows)"
    (job,) = world.kube.list(
        API_VERSION, "TrainingJob", world.ns, "perennial.dev/retrainpolicy=iris"
    )
    name = job["metadata"]["name"]
    status = world.wait(
        lambda: (s := world.get("TrainingJob", name).get("status", {})).get("modelVersion") and s,
        f"{name} trained",
    )
    assert status["dataset"]["sha256"] == new_sha == world.policy_status()["newData"]["sha256"]
    assert status["dataset"]["rows"] == 170
