"""Failing canaries rolled back while clients keep calling the stable version: not one of
their requests may fail (issue 20).

Real serving pods on the real node (the runtime image's perennial-serve), the operator's
canary (replica ratio: the Service selects both tracks), and a client that routes each
request to one of the Service's ready endpoints as kube-proxy would
(tests/support/service_load.py: the node has no kube-proxy). Two ways to fail:

- ModelVersion 2's model file on the claim is corrupted after registration, so its server
  refuses it (the sha256 check) and the canary never becomes ready: rolled back at
  readyDeadlineSeconds. With surge (the default) the stable keeps both pods meanwhile.
- ModelVersion 2 is sound but the rollout tolerates no latency (maxP99LatencyMs 0): the
  canary gets ready, the stable shrinks from 2 pods to 1 under load (the pod that goes away
  is the one that could drop requests), the canary is measured and rolled back, and the
  canary pod goes away too.
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
from support.model_dirs import ModelCase
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


def two_versions(world: World, artifacts: Path, corrupt: bool) -> ModelCase:
    """v1 and a copy of it as v2, registered; v2's bytes changed afterwards if `corrupt`."""
    models = artifacts / "models" / MODEL
    case = model_dirs.build("logreg", models)
    second = models / "second"
    shutil.copytree(case.path, second)
    modelversion(world, 1, case.path)
    modelversion(world, 2, second)
    if corrupt:  # after registration: the server's check refuses the bytes (never ready)
        with open(second / "model.onnx", "ab") as model_file:
            model_file.write(b"\0")
    return case


def stable_pods(world: World) -> set[str]:
    pods = world.list("Pod", f"perennial.dev/inferenceservice={SERVICE},perennial.dev/track=stable")
    return {p["metadata"]["name"] for p in pods}


def stable_size(world: World) -> int:
    stable = world.kube.get("apps/v1", "Deployment", world.ns, f"{SERVICE}-stable")
    assert stable is not None
    return int(stable["spec"]["replicas"])


def roll_back_under_load(
    world: World, cluster: TestCluster, case: ModelCase, rollout: dict[str, Any]
) -> tuple[dict[str, Any], ServiceLoad, set[str], set[int]]:
    """v1 on 2 pods, then v2 under load until rolled back and the stable is whole again.
    Returns the final status, the load, the stable pods before, the stable sizes seen."""
    world.create(resource("InferenceService", SERVICE, {
        "model": {"name": MODEL, "version": 1},
        "replicas": 2,
        "resources": {"cpu": "200m", "memory": "512Mi"},
        "rollout": {"strategy": "Canary", "steps": [50, 100], "stepSeconds": 10,
                    "readyDeadlineSeconds": DEADLINE, **rollout},
    }))  # fmt: skip
    world.wait(lambda: stable_ready(world, 2), "v1 Ready on 2 pods", timeout=180)

    body = {"instances": case.X_test.iloc[:4].to_numpy().tolist()}
    path = f"/v1/models/{MODEL}:predict"
    sizes: set[int] = set()

    def rolled_back() -> dict[str, Any] | None:
        sizes.add(stable_size(world))
        status = world.status("InferenceService", SERVICE)
        return status if status.get("phase") == "RolledBack" else None

    with cluster.api_client() as api, ServiceLoad(api, world.ns, SERVICE, path, body) as load:
        world.wait(lambda: len(load.outcomes) >= 50, "load running on v1", timeout=30)
        before = stable_pods(world)
        world.kube.patch("perennial.dev/v1alpha1", "InferenceService", world.ns, SERVICE,
                         {"spec": {"model": {"version": 2}}})  # fmt: skip
        status = world.wait(rolled_back, "canary rolled back", timeout=DEADLINE + 90)
        world.wait(lambda: stable_ready(world, 2), "the stable back on 2 pods", timeout=120)
        settled = len(load.outcomes)
        world.wait(lambda: len(load.outcomes) >= settled + 50, "load after", timeout=30)
    return status, load, before, sizes


def report(load: ServiceLoad, sizes: set[int]) -> None:
    latencies = sorted(o.seconds for o in load.outcomes)
    print(
        f"\n{len(load.outcomes)} requests over {load.outcomes[-1].at:.0f} s, "
        f"{len(load.failed())} failed; pods {sorted(load.pods_seen)}; stable sizes {sizes}; "
        f"p50 {latencies[len(latencies) // 2] * 1000:.1f} ms, "
        f"p99 {latencies[int(len(latencies) * 0.99)] * 1000:.1f} ms"
    )


def test_a_canary_that_never_gets_ready_costs_no_capacity_and_no_request(
    world: World, cluster: TestCluster, artifacts: Path
) -> None:
    case = two_versions(world, artifacts, corrupt=True)
    status, load, before, sizes = roll_back_under_load(world, cluster, case, {})
    report(load, sizes)
    assert status["lastRollback"]["reason"] == "ReadyDeadlineExceeded"
    assert status["currentVersion"] == 1
    assert [p for p in load.pods_seen if p.startswith(f"{SERVICE}-canary-")] == []
    assert sizes == {2}, "surge: the stable keeps every pod while the canary is not ready"
    assert stable_pods(world) == before
    assert load.failed() == [], load.failed()[:10]


def test_a_canary_rolled_back_after_the_stable_shrank_fails_no_request(
    world: World, cluster: TestCluster, artifacts: Path
) -> None:
    case = two_versions(world, artifacts, corrupt=False)
    status, load, before, sizes = roll_back_under_load(world, cluster, case, {"maxP99LatencyMs": 0})
    report(load, sizes)
    assert status["lastRollback"]["reason"] == "LatencyExceeded"
    assert status["currentVersion"] == 1
    canary = {p for p in load.pods_seen if p.startswith(f"{SERVICE}-canary-")}
    assert canary, "the canary served before its rollback"
    assert sizes == {2, 1}, "the stable shrank once the canary was ready, and grew back"
    gone = before - stable_pods(world)  # a stable pod that served and was scaled away
    assert gone, (before, stable_pods(world))
    assert [o for o in load.outcomes if o.pod in gone]
    assert [o for o in load.outcomes if o.pod in canary]
    assert load.failed() == [], load.failed()[:10]
