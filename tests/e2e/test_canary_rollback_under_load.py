"""A failing canary rolled back while clients keep calling the stable version: not one of
their requests may fail (issue 20).

Real serving pods on the real node (the runtime image's perennial-serve), the operator's
canary (replica ratio: the Service selects both tracks), and a client that routes each
request to one of the Service's ready endpoints as kube-proxy would
(tests/support/service_load.py: the node has no kube-proxy). ModelVersion 2's model file on
the claim is corrupted after registration, so its server refuses it (the sha256 check) and
the canary never becomes ready: rolled back at readyDeadlineSeconds. Meanwhile the canary
step scales the stable Deployment from 2 pods to 1 and, after the rollback, back to 2:
the pod that goes away is the one that could drop requests.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from perennial_operator.config import DEFAULT_ARTIFACT_PVC
from perennial_runtime import contract
from support import model_dirs
from support.cluster_fixtures import TestCluster
from support.service_load import ServiceLoad
from support.world import World, resource

pytestmark = pytest.mark.e2e

MODEL, SERVICE = "bc", "shop"
DEADLINE = 25  # readyDeadlineSeconds of the canary


def modelversion(world: World, version: int, folder: Path) -> None:
    uri = f"pvc://{DEFAULT_ARTIFACT_PVC}/models/{MODEL}/{folder.name}"
    sha = contract.sha256_file(folder / contract.RESULT)
    world.create(resource("ModelVersion", f"{MODEL}-v{version}",
                          {"model": MODEL, "version": version,
                           "artifact": {"uri": uri, "sha256": sha}}))  # fmt: skip


def stable_ready(world: World, count: int) -> dict[str, Any] | None:
    status = world.status("InferenceService", SERVICE)
    if status.get("readyReplicas") == count and status.get("phase") in ("Ready", "RolledBack"):
        return status
    return None


def test_a_canary_that_never_gets_ready_is_rolled_back_without_a_failed_request(
    world: World, cluster: TestCluster, artifacts: Path
) -> None:
    models = artifacts / "models" / MODEL
    case = model_dirs.build("logreg", models)
    good = case.path
    bad = models / "corrupted"
    shutil.copytree(good, bad)
    modelversion(world, 1, good)
    modelversion(world, 2, bad)
    # After registration the bytes change: the server's check refuses them (not ready).
    with open(bad / "model.onnx", "ab") as model_file:
        model_file.write(b"\0")

    world.create(resource("InferenceService", SERVICE, {
        "model": {"name": MODEL, "version": 1},
        "replicas": 2,
        "resources": {"cpu": "200m", "memory": "512Mi"},
        "rollout": {"strategy": "Canary", "steps": [50, 100], "stepSeconds": 10,
                    "readyDeadlineSeconds": DEADLINE},
    }))  # fmt: skip
    world.wait(lambda: stable_ready(world, 2), "v1 Ready on 2 pods", timeout=180)

    body = {"instances": case.X_test.iloc[:4].to_numpy().tolist()}
    path = f"/v1/models/{MODEL}:predict"
    with cluster.api_client() as api, ServiceLoad(api, world.ns, SERVICE, path, body) as load:
        world.wait(lambda: len(load.outcomes) >= 50, "load running on v1", timeout=30)
        before = set(load.pods_seen)
        world.kube.patch("perennial.dev/v1alpha1", "InferenceService", world.ns, SERVICE,
                         {"spec": {"model": {"version": 2}}})  # fmt: skip
        status = world.wait_status("InferenceService", SERVICE, "canary rolled back",
                                   timeout=DEADLINE + 90, phase="RolledBack")  # fmt: skip
        world.wait(lambda: stable_ready(world, 2), "the stable back on 2 pods", timeout=120)
        settled = len(load.outcomes)
        world.wait(lambda: len(load.outcomes) >= settled + 50, "load after", timeout=30)

    assert status["lastRollback"]["reason"] == "ReadyDeadlineExceeded"
    assert status["currentVersion"] == 1
    canary = [p for p in load.pods_seen if p.startswith(f"{SERVICE}-canary-")]
    assert canary == []  # never ready: never an endpoint
    stable_pods = {
        p["metadata"]["name"]
        for p in world.list("Pod", f"perennial.dev/inferenceservice={SERVICE}")
    }
    gone = before - stable_pods  # a stable pod that served and was scaled away under load
    assert gone, (before, stable_pods)
    served_by_gone = [o for o in load.outcomes if o.pod in gone]
    assert served_by_gone
    failed = load.failed()
    latencies = sorted(o.seconds for o in load.outcomes)
    print(
        f"\n{len(load.outcomes)} requests over {load.outcomes[-1].at:.0f} s, "
        f"{len(failed)} failed; pods {sorted(load.pods_seen)}; gone {sorted(gone)} "
        f"({len(served_by_gone)} requests, the last at {served_by_gone[-1].at:.1f} s); "
        f"p50 {latencies[len(latencies) // 2] * 1000:.1f} ms, "
        f"p99 {latencies[int(len(latencies) * 0.99)] * 1000:.1f} ms"
    )
    assert failed == [], failed[:10]
