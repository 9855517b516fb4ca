"""An AutoML search fanned out over a ComputePool (spec.automl.parallelism: 4), on the real
control plane: the real Job controller (Indexed Jobs), the real scheduler (topology spread,
the pool's selector and taint), the operator as a real process scaling kwok nodes.

What this shows: the step Jobs the operator creates and when, that one rung's pods are
admitted under Pod Security "restricted", spread over several nodes of a pool that scaled
out from zero for them, that the Job controller accepts the Indexed Job with
backoffLimitPerIndex/FailIndex, that an operator killed between rungs re-creates nothing,
that one ModelVersion is registered and the pool returns to zero.
What it does not: kwok runs no containers, so no candidate is fitted here. The test writes
each pod's termination message the way the trainer would (support/kubelet.py's role); the
trainer's side of the same chain runs for real in tests/unit/test_train_staged.py.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from perennial_operator.api.group import API_VERSION, LABEL_COMPUTEPOOL
from perennial_operator.k8s.kube import now_iso
from support import kubelet
from support.operator_process import OperatorOptions
from support.world import World

pytestmark = pytest.mark.integration

RESULT = {
    "outcome": "Succeeded",
    "metrics": {"accuracy": 0.96, "roc_auc": 0.991},
    "dataset": {"uri": "builtin://breast_cancer", "sha256": "ab" * 32, "rows": 569},
    "artifact": {"format": "onnx", "sha256": "cd" * 32},
    "algorithm": "svm",
    "hyperparameters": {},
}


@pytest.fixture
def operator_options() -> OperatorOptions:
    # Pod status is the test's to write (kwok leaves the pods alone); pools resync fast.
    return OperatorOptions(
        pod_annotations=kubelet.LEAVE_TO_TEST,
        artifact_claim=True,
        env={"PERENNIAL_COMPUTEPOOL_RESYNC_SECONDS": "5"},
    )


@pytest.fixture
def gpus_per_node() -> int:
    return 0


@pytest.fixture
def pool(world: World, gpus_per_node: int) -> Iterator[str]:
    name = f"fan-{uuid.uuid4().hex[:5]}"
    world.create(
        {
            "apiVersion": API_VERSION,
            "kind": "ComputePool",
            "metadata": {"name": name},
            "spec": {
                "node": {"cpu": "2", "memory": "8Gi", "gpu": gpus_per_node},
                "labels": {"perennial.dev/test-pool": name},
                "taints": [
                    {"key": "perennial.dev/test-pool", "value": name, "effect": "NoSchedule"}
                ],
                "minNodes": 0,
                "maxNodes": 4,
                "scaleDownDelaySeconds": 3,
                "provider": {"kwok": {}},
            },
        }
    )
    yield name
    world.kube.delete(API_VERSION, "ComputePool", None, name)
    for node in nodes(world, name):
        world.kube.delete("v1", "Node", None, node)


def nodes(world: World, pool: str) -> list[str]:
    found = world.kube.list("v1", "Node", None, f"{LABEL_COMPUTEPOOL}={pool}")
    return [n["metadata"]["name"] for n in found]


def step_pods(world: World, step: str) -> list[dict[str, Any]]:
    return world.list("Pod", f"perennial.dev/automl-step={step}")


def scheduled(world: World, step: str, count: int) -> list[dict[str, Any]]:
    return world.wait(
        lambda: (
            (p := step_pods(world, step))
            and len([x for x in p if x["spec"].get("nodeName")]) >= count
            and p
        ),
        f"{count} pod(s) of {step} scheduled",
        timeout=90,
    )


def running(world: World, step: str, count: int) -> list[dict[str, Any]]:
    """``count`` pods of the step on a node whose container has not ended yet."""
    return world.wait(
        lambda: (
            (
                p := [
                    x
                    for x in step_pods(world, step)
                    if x["spec"].get("nodeName")
                    and not x.get("status", {}).get("containerStatuses")
                ]
            )  # fmt: skip
            and len(p) >= count
            and p
        ),
        f"{count} running pod(s) of {step}",
        timeout=90,
    )


def end(world: World, pod: dict[str, Any], message: dict[str, Any], code: int = 0) -> None:
    """The train container exits with the trainer's termination message."""
    stamp = now_iso()
    terminated = {
        "exitCode": code,
        "reason": "Completed" if code == 0 else "Error",
        "message": json.dumps(message),
        "startedAt": stamp,
        "finishedAt": stamp,
    }
    status = {
        "phase": "Succeeded" if code == 0 else "Failed",
        "containerStatuses": [
            {
                "name": "train",
                "image": "perennial/runtime:test",
                "imageID": "",
                "ready": False,
                "restartCount": 0,
                "state": {"terminated": terminated},
            }  # fmt: skip
        ],
    }
    world.kube.patch_status("v1", "Pod", world.ns, pod["metadata"]["name"], status)


def tj_status(world: World, name: str = "fan") -> dict[str, Any]:
    return dict((world.get("TrainingJob", name) or {}).get("status") or {})


def trainingjob(name: str, pool: str, parallelism: int, gpu: int = 0) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "TrainingJob",
        "metadata": {"name": name},
        "spec": {
            "model": name,
            "task": "classification",
            "algorithm": "auto",
            "automl": {"parallelism": parallelism, "timeBudgetSeconds": 60},
            "dataset": {"uri": "builtin://breast_cancer", "target": "target"},
            "resources": {"cpu": "1", "memory": "1Gi", "gpu": gpu},
            "computePool": pool,
        },
    }


def registered(world: World, name: str) -> dict[str, Any]:
    """The TrainingJob once its ModelVersion is registered."""
    return world.wait(
        lambda: (t := world.get("TrainingJob", name)) and t["status"].get("modelVersion") and t,
        f"{name} registered",
        timeout=60,
    )


def gpu_limit(pod: dict[str, Any]) -> str | None:
    limits = pod["spec"]["containers"][0]["resources"].get("limits") or {}
    return limits.get("nvidia.com/gpu")


def test_parallelism_four_scales_the_pool_out_and_spreads_a_rung_over_nodes(
    world: World, pool: str
) -> None:
    assert nodes(world, pool) == []
    world.create(trainingjob("fan", pool, 4))
    (plan,) = scheduled(world, "plan", 1)
    assert plan["spec"]["nodeName"] in nodes(world, pool)  # the pool scaled out from zero
    end(world, plan, {"outcome": "Planned", "rungs": [455], "rung": 0, "candidates": 6})

    rung = scheduled(world, "rung-0", 4)
    job = world.kube.get("batch/v1", "Job", world.ns, "fan-rung-0")
    assert job["spec"]["completionMode"] == "Indexed" and job["spec"]["completions"] == 6
    assert job["spec"]["parallelism"] == 4 and job["spec"]["backoffLimitPerIndex"] == 1
    running = [p for p in rung if p["spec"].get("nodeName")]
    on = {p["spec"]["nodeName"] for p in running}
    assert len(running) == 4 and len(on) >= 2 and on <= set(nodes(world, pool))
    indexes = {p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"]
               for p in running}  # fmt: skip
    assert indexes == {"0", "1", "2", "3"}
    for p in running:
        assert p["spec"]["topologySpreadConstraints"][0]["topologyKey"] == "kubernetes.io/hostname"
        assert p["spec"]["containers"][0]["command"] == ["perennial-train"]
        assert p["spec"]["containers"][0]["args"][0] == "trial"
    world.wait(lambda: tj_status(world).get("progress") == "rung 0: 0/6", "progress column")

    # One candidate fails for good (exit 2: FailIndex), the rest succeed.
    end(world, running[0], {"outcome": "BadSpec", "message": "bad parameters"}, code=2)
    for p in running[1:]:
        end(world, p, {"outcome": "Trial", "status": "scored", "fitted": True})
    rest = world.wait(
        lambda: (
            (
                p := [
                    x
                    for x in step_pods(world, "rung-0")
                    if x["spec"].get("nodeName")
                    and not x.get("status", {}).get("containerStatuses")
                ]
            )  # fmt: skip
            and len(p) >= 2
            and p
        ),
        "the last two candidates' pods",
        timeout=60,
    )
    world.op.kill()  # killed between rungs: the step Jobs are the state
    for p in rest[:2]:
        end(world, p, {"outcome": "Trial", "status": "scored", "fitted": True})
    world.op.start()

    (finish,) = scheduled(world, "finish-0", 1)
    assert finish["spec"]["containers"][0]["args"][-2:] == ["--rung", "0"]
    end(world, finish, RESULT)
    tj = registered(world, "fan")
    assert tj["status"]["phase"] == "Succeeded"
    assert [m["metadata"]["name"] for m in world.list("ModelVersion")] == ["fan-v1"]
    jobs = sorted(j["metadata"]["name"] for j in world.list("Job"))
    assert jobs == ["fan-finish-0", "fan-plan", "fan-rung-0"]  # none created twice
    assert len(step_pods(world, "rung-0")) == 6  # one pod per candidate: none retried
    world.wait(lambda: nodes(world, pool) == [], "the pool back at zero nodes", timeout=90)

    # Deleting the TrainingJob takes every step Job with it (owner references).
    world.kube.delete(API_VERSION, "TrainingJob", world.ns, "fan")
    world.wait(lambda: not world.list("Job"), "the step Jobs garbage-collected", timeout=60)


@pytest.mark.parametrize("gpus_per_node", [1])
def test_on_a_gpu_pool_only_the_candidates_that_use_the_gpu_ask_for_it(
    world: World, pool: str
) -> None:
    """resources.gpu: 1 on a GPU pool: the plan says which of rung 0's candidates are
    XGBoost (gpuIndexes); those run in rung-0-gpu with the GPU, the others in rung-0
    without, the parallelism shared; the finish waits for both and may use the GPU."""
    world.create(trainingjob("gfan", pool, 3, gpu=1))
    (plan,) = scheduled(world, "plan", 1)
    assert gpu_limit(plan) is None  # the plan only reads the data
    planned = {"outcome": "Planned", "rungs": [455], "rung": 0, "candidates": 5, "gpuIndexes": [3]}
    end(world, plan, planned)

    cpu = scheduled(world, "rung-0", 2)
    (gpu,) = scheduled(world, "rung-0-gpu", 1)
    cpu_job = world.kube.get("batch/v1", "Job", world.ns, "gfan-rung-0")
    gpu_job = world.kube.get("batch/v1", "Job", world.ns, "gfan-rung-0-gpu")
    assert (cpu_job["spec"]["completions"], cpu_job["spec"]["parallelism"]) == (4, 2)
    assert (gpu_job["spec"]["completions"], gpu_job["spec"]["parallelism"]) == (1, 1)
    assert gpu_limit(gpu) == "1" and gpu["spec"]["containers"][0]["args"][-2:] == [
        "--indexes", "3"
    ]  # fmt: skip
    for p in cpu:
        assert gpu_limit(p) is None and p["spec"]["containers"][0]["args"][-2:] == [
            "--indexes", "0,1,2,4"
        ]  # fmt: skip
    world.wait(lambda: tj_status(world, "gfan").get("progress") == "rung 0: 0/5", "progress")

    end(world, gpu, {"outcome": "Trial", "status": "scored", "fitted": True})
    world.wait(lambda: tj_status(world, "gfan").get("progress") == "rung 0: 1/5", "1/5")
    for _ in range(2):  # the CPU Job's four pods, two at a time
        for p in running(world, "rung-0", 2):
            end(world, p, {"outcome": "Trial", "status": "scored", "fitted": True})
    (finish,) = scheduled(world, "finish-0", 1)
    assert gpu_limit(finish) == "1"  # the final refit may be XGBoost's
    end(world, finish, RESULT)
    tj = registered(world, "gfan")
    assert tj["status"]["phase"] == "Succeeded"
    jobs = sorted(j["metadata"]["name"] for j in world.list("Job"))
    assert jobs == ["gfan-finish-0", "gfan-plan", "gfan-rung-0", "gfan-rung-0-gpu"]
    assert len(step_pods(world, "rung-0")) == 4 and len(step_pods(world, "rung-0-gpu")) == 1
