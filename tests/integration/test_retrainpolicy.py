"""RetrainPolicy on the real control plane, with the operator as a real process.

The serving side is real as far as the operator goes: ModelVersion churn-v1 holds Production
and the InferenceService, tracking that stage, deploys it, so its reconciler itself writes
status.currentModelVersion (the baseline). No server runs, so the test writes status.drift
through the status subresource, as the drift timer would; the service has drift monitoring
switched off so that timer never overwrites it, and the service reconciler patches only the
status fields it owns. Training pods are finished the way a kubelet would, with the result
JSON (metrics and baselineMetrics) the runtime writes. The newData probe pods are finished
the same way, with the termination message `perennial-train fingerprint` writes.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from perennial_operator.api.group import API_VERSION
from perennial_operator.k8s.kube import now_iso
from support import kubelet, storage
from support.operator_process import OperatorOptions
from support.world import World, resource

pytestmark = pytest.mark.integration

CLAIM = "perennial-artifacts"
POLICY_LABEL = "perennial.dev/retrainpolicy=churn"
PROBE_LABEL = "perennial.dev/newdata-probe"
SERVED_SHA, NEW_SHA = "5e" * 32, "9b" * 32
DATASET = "pvc://datasets/churn.csv"


def result(candidate: float, baseline: float) -> str:
    return json.dumps(
        {
            "outcome": "Succeeded",
            "metrics": {"roc_auc": candidate},
            "baselineMetrics": {"roc_auc": baseline},
            "dataset": {"uri": "builtin://breast_cancer", "sha256": "ab" * 32, "rows": 569},
            "artifact": {"format": "onnx", "sha256": "cd" * 32},
            "algorithm": "random_forest",
        }
    )


@pytest.fixture
def operator_options() -> OperatorOptions:
    # The artifact claim bound (training pods mount it); pod status is the test's to write.
    return OperatorOptions(pod_annotations=kubelet.LEAVE_TO_TEST, artifact_claim=True)


def jobs(world: World) -> list[dict[str, Any]]:
    return world.list("TrainingJob", POLICY_LABEL)


def policy_events(world: World) -> list[tuple[str, str]]:
    return [(reason, message) for _, reason, message in world.events("RetrainPolicy")]


def condition(world: World, type_: str) -> dict[str, Any]:
    return world.condition("RetrainPolicy", "churn", type_)


def serving_v1(world: World) -> None:
    world.create(
        resource(
            "ModelVersion",
            "churn-v1",
            {
                "model": "churn",
                "version": 1,
                "stage": "Production",
                "artifact": {"uri": f"pvc://{CLAIM}/models/churn/v1", "sha256": "01" * 32},
                "source": {"dataset": {"uri": DATASET, "sha256": SERVED_SHA, "rows": 500}},
            },
        )
    )
    world.create(
        resource(
            "InferenceService",
            "churn",
            {
                "model": {"name": "churn", "stage": "Production"},
                "replicas": 1,
                "resources": {"cpu": "50m", "memory": "64Mi"},
                "monitoring": {"drift": {"enabled": False}},
            },
        )
    )
    world.wait(
        lambda: (
            world.get("InferenceService", "churn").get("status", {}).get("currentModelVersion")
            == "churn-v1"
        ),
        "churn-v1 served",
    )


def serving_v1_with_drift(world: World) -> None:
    serving_v1(world)
    world.kube.patch_status(
        API_VERSION,
        "InferenceService",
        world.ns,
        "churn",
        {"drift": {"psi": 0.31, "samples": 900, "time": now_iso()}},
    )


def policy(
    world: World,
    triggers: dict[str, Any] | None = None,
    dataset: str = "builtin://breast_cancer",
) -> None:
    world.create(
        resource(
            "RetrainPolicy",
            "churn",
            {
                "inferenceService": "churn",
                "template": {
                    "model": "churn",
                    "task": "classification",
                    "algorithm": "random_forest",
                    "dataset": {"uri": dataset, "target": "target"},
                    "resources": {"cpu": "100m", "memory": "128Mi"},
                },
                "triggers": triggers or {"drift": {"psi": 0.2, "minSamples": 500}},
                "cooldownSeconds": 3600,
                "promotion": {"mode": "Auto", "metric": "roc_auc", "minImprovement": 0.005},
            },
        )
    )


def the_one_job(world: World) -> dict[str, Any]:
    (job,) = world.wait(lambda: jobs(world), "the policy's TrainingJob")
    return job


def finish_training(world: World, job: str, candidate: float, baseline: float) -> None:
    pod = world.wait(
        lambda: next(
            (
                p["metadata"]["name"]
                for p in world.kube.list("v1", "Pod", world.ns, f"perennial.dev/trainingjob={job}")
                if p.get("spec", {}).get("nodeName")
            ),
            None,
        ),
        f"pod of {job} scheduled",
    )
    kubelet.training(world.kube, world.ns, pod)
    kubelet.finish(world.kube, world.ns, pod, exit_code=0, message=result(candidate, baseline))


def probes(world: World) -> list[str]:
    jobs = world.kube.list("batch/v1", "Job", world.ns, f"{POLICY_LABEL},{PROBE_LABEL}")
    return sorted(j["metadata"]["name"] for j in jobs)


def finish_probe(world: World, number: int, exit_code: int, message: dict[str, Any]) -> str:
    """Wait for the number-th probe Job's pod, then end it as a kubelet would."""
    job = world.wait(
        lambda: len(probes(world)) >= number and probes(world)[number - 1],
        f"probe Job #{number}",
    )
    pod = world.wait(
        lambda: next(
            (
                p
                for p in world.kube.list("v1", "Pod", world.ns, f"{PROBE_LABEL}={job}")
                if p.get("spec", {}).get("nodeName")
            ),
            None,
        ),
        f"pod of {job} scheduled (admitted under Pod Security restricted)",
    )
    (container,) = pod["spec"]["containers"]
    assert container["command"] == ["perennial-train"]
    assert container["args"][0] == "fingerprint"
    stamp = now_iso()
    terminated = {
        "exitCode": exit_code,
        "reason": "Completed" if exit_code == 0 else "Error",
        "message": json.dumps(message, separators=(",", ":")),
        "startedAt": stamp,
        "finishedAt": stamp,
    }
    world.kube.patch_status("v1", "Pod", world.ns, pod["metadata"]["name"], {
        "phase": "Succeeded" if exit_code == 0 else "Failed",
        "startTime": stamp,
        "containerStatuses": [{"name": "fingerprint", "image": container["image"],
                               "imageID": "", "ready": False, "restartCount": 0,
                               "state": {"terminated": terminated}}],
    })  # fmt: skip
    return str(job)


def newdata_policy(world: World) -> None:
    storage.bound_claim(world.kube, world.ns, "datasets", "/tmp/perennial-test-datasets")
    serving_v1(world)
    policy(world, {"newData": {"pollSeconds": 10}}, dataset=DATASET)


def fingerprinted(sha256: str, rows: int = 1234) -> dict[str, Any]:
    return {"outcome": "Fingerprinted", "dataset": {"uri": DATASET, "sha256": sha256, "rows": rows}}


def test_drift_retrains_once_with_the_baseline_and_promotes_a_better_candidate(
    world: World,
) -> None:
    serving_v1_with_drift(world)
    policy(world)
    job = the_one_job(world)
    name = job["metadata"]["name"]
    assert job["spec"]["baseline"] == {"modelVersion": "churn-v1"}
    assert "ownerReferences" not in job["metadata"]  # history outlives the policy
    assert job["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "perennial"
    status = world.wait(
        lambda: (
            (s := world.get("RetrainPolicy", "churn").get("status"))
            and s.get("phase") == "Training"
            and s
        ),
        "phase Training",
    )
    assert status["lastTrainingJob"] == name
    assert status["lastTrigger"]["reason"] == "Drift"
    assert "psi=0.31 > 0.2" in status["lastTrigger"]["detail"]

    # A restart mid-training resumes the recorded trigger: no second job.
    world.op.kill()
    world.op.start()
    finish_training(world, name, candidate=0.995, baseline=0.97)

    world.wait(
        lambda: world.get("ModelVersion", "churn-v2").get("spec", {}).get("stage") == "Production",
        "churn-v2 promoted to Production",
    )
    world.wait(
        lambda: world.get("ModelVersion", "churn-v1")["spec"]["stage"] == "Archived",
        "churn-v1 archived by the ModelVersion reconciler",
    )
    status = world.get("RetrainPolicy", "churn")["status"]
    assert status["candidateModelVersion"] == "churn-v2"
    promotion = status["lastPromotion"]
    assert (promotion["modelVersion"], promotion["metric"]) == ("churn-v2", "roc_auc")
    assert (promotion["candidate"], promotion["baseline"]) == (0.995, 0.97)
    assert condition(world, "Promoted")["reason"] == "CandidatePromoted"
    reasons = [
        r
        for r, _ in world.wait(
            lambda: (
                [e for e in policy_events(world) if e[0] == "Promoted"] and policy_events(world)
            ),
            "Promoted Event",
        )
    ]
    assert {"Triggered", "TrainingStarted", "Promoted"} <= set(reasons)
    assert len(jobs(world)) == 1


def test_a_worse_candidate_is_not_promoted_and_the_cooldown_holds_the_drift(
    world: World,
) -> None:
    serving_v1_with_drift(world)
    policy(world)
    name = the_one_job(world)["metadata"]["name"]
    finish_training(world, name, candidate=0.95, baseline=0.97)

    world.wait(
        lambda: condition(world, "Promoted").get("reason") == "BelowMinImprovement",
        "Promoted=False BelowMinImprovement",
    )
    message = condition(world, "Promoted")["message"]
    assert "candidate=0.95 baseline=0.97" in message
    events = world.wait(
        lambda: [m for r, m in policy_events(world) if r == "NotPromoted"], "NotPromoted Event"
    )
    assert "churn-v2" in events[0] and "candidate=0.95 baseline=0.97" in events[0]
    assert world.get("ModelVersion", "churn-v2")["spec"].get("stage", "None") == "None"
    assert world.get("ModelVersion", "churn-v1")["spec"]["stage"] == "Production"

    # The drift is still above the threshold, but the cooldown forbids a second run.
    world.wait(
        lambda: condition(world, "Triggered").get("reason") == "CoolingDown",
        "Triggered=False CoolingDown",
    )
    assert world.get("RetrainPolicy", "churn")["status"]["phase"] == "Idle"
    assert len(jobs(world)) == 1


def test_new_data_found_by_the_probe_starts_one_trainingjob(world: World) -> None:
    newdata_policy(world)
    probe = finish_probe(world, 1, 0, fingerprinted(NEW_SHA))

    job = the_one_job(world)
    assert job["metadata"]["annotations"]["perennial.dev/retrain-reason"] == "NewData"
    assert job["spec"]["baseline"] == {"modelVersion": "churn-v1"}
    assert job["spec"]["dataset"]["uri"] == DATASET
    status = world.get("RetrainPolicy", "churn")["status"]
    assert status["lastTrigger"]["reason"] == "NewData"
    assert status["lastTrigger"]["detail"] == "dataset sha256 5e5e5e5e…→9b9b9b9b… (1234 rows)"
    record = status["newData"]
    assert "probeJob" not in record  # none in flight: the policy is training
    assert (record["sha256"], record["rows"], record["triggeredSha256"]) == (
        NEW_SHA,
        1234,
        NEW_SHA,
    )
    checked = condition(world, "DatasetChecked")
    assert (checked["status"], checked["reason"]) == ("True", "DatasetChanged")
    assert probe in checked["message"]
    # The probe is the policy's child, cleaned up after it finished.
    probe_job = world.kube.get("batch/v1", "Job", world.ns, probe) or {}
    assert probe_job["metadata"]["ownerReferences"][0]["kind"] == "RetrainPolicy"
    assert probe_job["spec"]["ttlSecondsAfterFinished"] > 0
    assert probes(world) == [probe]  # no probe while training
    assert len(jobs(world)) == 1


def test_a_failed_probe_warns_and_the_same_data_retrains_nothing(world: World) -> None:
    newdata_policy(world)
    failure = {
        "outcome": "DatasetUnavailable",
        "message": f"{DATASET}: no such file /mnt/pvc/datasets/churn.csv",
    }
    first = finish_probe(world, 1, 4, failure)
    world.wait(
        lambda: condition(world, "DatasetChecked").get("reason") == "DatasetUnavailable",
        "DatasetChecked=False DatasetUnavailable",
    )
    warnings = world.wait(
        lambda: [m for r, m in policy_events(world) if r == "NewDataProbeFailed"],
        "NewDataProbeFailed Event",
    )
    assert first in warnings[0] and "no such file" in warnings[0]

    # The next poll probes again; this time the data is what churn-v1 was trained on.
    second = finish_probe(world, 2, 0, fingerprinted(SERVED_SHA, rows=500))
    assert second != first
    world.wait(
        lambda: condition(world, "DatasetChecked").get("reason") == "DatasetUnchanged",
        "DatasetChecked=True DatasetUnchanged",
    )
    record = world.get("RetrainPolicy", "churn")["status"]["newData"]
    assert (record["sha256"], record["rows"]) == (SERVED_SHA, 500)
    assert condition(world, "Triggered")["reason"] == "WaitingForTrigger"

    # It keeps polling, one probe at a time: the third stays alone while it runs.
    world.wait(lambda: len(probes(world)) == 3, "a third probe, pollSeconds later")
    third = probes(world)[2]
    world.wait(
        lambda: world.get("RetrainPolicy", "churn")["status"]["newData"].get("probeJob") == third,
        "third probe recorded as in flight",
    )
    time.sleep(15)  # longer than pollSeconds and the 10 s timer
    assert len(probes(world)) == 3
    assert jobs(world) == []
