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
from pathlib import Path
from typing import Any

import pytest

from perennial_operator.api.group import API_VERSION
from perennial_operator.k8s.kube import Kube, now_iso
from support import kubelet, storage
from support.operator_process import OperatorProcess, start_for_training
from support.poll import until

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
def kube(cluster: Any) -> Kube:
    return Kube(cluster.api_client())


@pytest.fixture
def operator(cluster: Any, namespace: str, tmp_path: Path):
    proc = start_for_training(str(cluster.kubeconfig), namespace, tmp_path)
    yield proc
    proc.stop()


class World:
    def __init__(self, kube: Kube, ns: str, op: OperatorProcess) -> None:
        self.kube, self.ns, self.op = kube, ns, op

    def create(self, kind: str, name: str, spec: dict[str, Any]) -> None:
        self.kube.create(
            {
                "apiVersion": API_VERSION,
                "kind": kind,
                "metadata": {"name": name, "namespace": self.ns},
                "spec": spec,
            }
        )

    def get(self, kind: str, name: str) -> dict[str, Any]:
        return self.kube.get(API_VERSION, kind, self.ns, name) or {}

    def jobs(self) -> list[dict[str, Any]]:
        return self.kube.list(API_VERSION, "TrainingJob", self.ns, POLICY_LABEL)

    def events(self) -> list[tuple[str, str]]:
        items = self.kube.list("v1", "Event", self.ns)
        return [
            (e["reason"], e["message"])
            for e in items
            if e["involvedObject"]["kind"] == "RetrainPolicy"
        ]

    def condition(self, type_: str) -> dict[str, Any]:
        conds = self.get("RetrainPolicy", "churn").get("status", {}).get("conditions") or []
        return next((c for c in conds if c["type"] == type_), {})

    def describe(self) -> str:
        policy = self.get("RetrainPolicy", "churn").get("status")
        jobs = [(j["metadata"]["name"], j.get("status", {}).get("phase")) for j in self.jobs()]
        return (
            json.dumps({"policy": policy, "jobs": jobs}, indent=1)[:4000]
            + "\n--- operator log ---\n"
            + self.op.log_tail()
        )

    def wait(self, fn, message: str, timeout: float = 60.0):
        return until(fn, timeout=timeout, message=message, describe=self.describe)

    def serving_v1(self) -> None:
        self.create(
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
        self.create(
            "InferenceService",
            "churn",
            {
                "model": {"name": "churn", "stage": "Production"},
                "replicas": 1,
                "resources": {"cpu": "50m", "memory": "64Mi"},
                "monitoring": {"drift": {"enabled": False}},
            },
        )
        self.wait(
            lambda: (
                self.get("InferenceService", "churn").get("status", {}).get("currentModelVersion")
                == "churn-v1"
            ),
            "churn-v1 served",
        )

    def serving_v1_with_drift(self) -> None:
        self.serving_v1()
        self.kube.patch_status(
            API_VERSION,
            "InferenceService",
            self.ns,
            "churn",
            {"drift": {"psi": 0.31, "samples": 900, "time": now_iso()}},
        )

    def policy(
        self,
        triggers: dict[str, Any] | None = None,
        dataset: str = "builtin://breast_cancer",
    ) -> None:
        self.create(
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

    def the_one_job(self) -> dict[str, Any]:
        (job,) = self.wait(lambda: self.jobs(), "the policy's TrainingJob")
        return job

    def finish_training(self, job: str, candidate: float, baseline: float) -> None:
        pod = self.wait(
            lambda: next(
                (
                    p["metadata"]["name"]
                    for p in self.kube.list(
                        "v1", "Pod", self.ns, f"perennial.dev/trainingjob={job}"
                    )
                    if p.get("spec", {}).get("nodeName")
                ),
                None,
            ),
            f"pod of {job} scheduled",
        )
        kubelet.training(self.kube, self.ns, pod)
        kubelet.finish(self.kube, self.ns, pod, exit_code=0, message=result(candidate, baseline))

    def probes(self) -> list[str]:
        jobs = self.kube.list("batch/v1", "Job", self.ns, f"{POLICY_LABEL},{PROBE_LABEL}")
        return sorted(j["metadata"]["name"] for j in jobs)

    def finish_probe(self, number: int, exit_code: int, message: dict[str, Any]) -> str:
        """Wait for the number-th probe Job's pod, then end it as a kubelet would."""
        job = self.wait(
            lambda: len(self.probes()) >= number and self.probes()[number - 1],
            f"probe Job #{number}",
        )
        pod = self.wait(
            lambda: next(
                (
                    p
                    for p in self.kube.list("v1", "Pod", self.ns, f"{PROBE_LABEL}={job}")
                    if p.get("spec", {}).get("nodeName")
                ),
                None,
            ),
            f"pod of {job} scheduled (admitted under Pod Security restricted)",
        )
        (container,) = pod["spec"]["containers"]
        assert container["args"][:2] == ["perennial-train", "fingerprint"]
        stamp = now_iso()
        terminated = {"exitCode": exit_code, "reason": "Completed" if exit_code == 0 else "Error",
                      "message": json.dumps(message, separators=(",", ":")),
                      "startedAt": stamp, "finishedAt": stamp}  # fmt: skip
        self.kube.patch_status("v1", "Pod", self.ns, pod["metadata"]["name"], {
            "phase": "Succeeded" if exit_code == 0 else "Failed",
            "startTime": stamp,
            "containerStatuses": [{"name": "fingerprint", "image": container["image"],
                                   "imageID": "", "ready": False, "restartCount": 0,
                                   "state": {"terminated": terminated}}],
        })  # fmt: skip
        return str(job)

    def newdata_policy(self) -> None:
        storage.bound_claim(self.kube, self.ns, "datasets", "/tmp/perennial-test-datasets")
        self.serving_v1()
        self.policy({"newData": {"pollSeconds": 10}}, dataset=DATASET)


def fingerprinted(sha256: str, rows: int = 1234) -> dict[str, Any]:
    return {"outcome": "Fingerprinted", "dataset": {"uri": DATASET, "sha256": sha256, "rows": rows}}


@pytest.fixture
def world(kube: Kube, namespace: str, operator: OperatorProcess) -> World:
    return World(kube, namespace, operator)


def test_drift_retrains_once_with_the_baseline_and_promotes_a_better_candidate(
    world: World,
) -> None:
    world.serving_v1_with_drift()
    world.policy()
    job = world.the_one_job()
    name = job["metadata"]["name"]
    assert job["spec"]["baseline"] == {"modelVersion": "churn-v1"}
    assert job["metadata"]["ownerReferences"][0]["kind"] == "RetrainPolicy"
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
    world.finish_training(name, candidate=0.995, baseline=0.97)

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
    assert world.condition("Promoted")["reason"] == "CandidatePromoted"
    reasons = [
        r
        for r, _ in world.wait(
            lambda: [e for e in world.events() if e[0] == "Promoted"] and world.events(),
            "Promoted Event",
        )
    ]
    assert {"Triggered", "TrainingStarted", "Promoted"} <= set(reasons)
    assert len(world.jobs()) == 1


def test_a_worse_candidate_is_not_promoted_and_the_cooldown_holds_the_drift(
    world: World,
) -> None:
    world.serving_v1_with_drift()
    world.policy()
    name = world.the_one_job()["metadata"]["name"]
    world.finish_training(name, candidate=0.95, baseline=0.97)

    world.wait(
        lambda: world.condition("Promoted").get("reason") == "BelowMinImprovement",
        "Promoted=False BelowMinImprovement",
    )
    message = world.condition("Promoted")["message"]
    assert "candidate=0.95 baseline=0.97" in message
    events = world.wait(
        lambda: [m for r, m in world.events() if r == "NotPromoted"], "NotPromoted Event"
    )
    assert "churn-v2" in events[0] and "candidate=0.95 baseline=0.97" in events[0]
    assert world.get("ModelVersion", "churn-v2")["spec"].get("stage", "None") == "None"
    assert world.get("ModelVersion", "churn-v1")["spec"]["stage"] == "Production"

    # The drift is still above the threshold, but the cooldown forbids a second run.
    world.wait(
        lambda: world.condition("Triggered").get("reason") == "CoolingDown",
        "Triggered=False CoolingDown",
    )
    assert world.get("RetrainPolicy", "churn")["status"]["phase"] == "Idle"
    assert len(world.jobs()) == 1


def test_new_data_found_by_the_probe_starts_one_trainingjob(world: World) -> None:
    world.newdata_policy()
    probe = world.finish_probe(1, 0, fingerprinted(NEW_SHA))

    job = world.the_one_job()
    assert job["metadata"]["annotations"]["perennial.dev/retrain-reason"] == "NewData"
    assert job["spec"]["baseline"] == {"modelVersion": "churn-v1"}
    assert job["spec"]["dataset"]["uri"] == DATASET
    status = world.get("RetrainPolicy", "churn")["status"]
    assert status["lastTrigger"]["reason"] == "NewData"
    assert status["lastTrigger"]["detail"] == "dataset sha256 5e5e5e5e…→9b9b9b9b… (1234 rows)"
    record = status["newData"]
    assert "probeJob" not in record  # none in flight: the policy is training
    assert (record["sha256"], record["rows"], record["triggeredSha256"]) == (
        NEW_SHA, 1234, NEW_SHA,
    )  # fmt: skip
    checked = world.condition("DatasetChecked")
    assert (checked["status"], checked["reason"]) == ("True", "DatasetChanged")
    assert probe in checked["message"]
    # The probe is the policy's child, cleaned up after it finished.
    probe_job = world.kube.get("batch/v1", "Job", world.ns, probe) or {}
    assert probe_job["metadata"]["ownerReferences"][0]["kind"] == "RetrainPolicy"
    assert probe_job["spec"]["ttlSecondsAfterFinished"] > 0
    assert world.probes() == [probe]  # no probe while training
    assert len(world.jobs()) == 1


def test_a_failed_probe_warns_and_the_same_data_retrains_nothing(world: World) -> None:
    world.newdata_policy()
    failure = {"outcome": "DatasetUnavailable",
               "message": f"{DATASET}: no such file /mnt/pvc/datasets/churn.csv"}  # fmt: skip
    first = world.finish_probe(1, 4, failure)
    world.wait(
        lambda: world.condition("DatasetChecked").get("reason") == "DatasetUnavailable",
        "DatasetChecked=False DatasetUnavailable",
    )
    warnings = world.wait(
        lambda: [m for r, m in world.events() if r == "NewDataProbeFailed"],
        "NewDataProbeFailed Event",
    )
    assert first in warnings[0] and "no such file" in warnings[0]

    # The next poll probes again; this time the data is what churn-v1 was trained on.
    second = world.finish_probe(2, 0, fingerprinted(SERVED_SHA, rows=500))
    assert second != first
    world.wait(
        lambda: world.condition("DatasetChecked").get("reason") == "DatasetUnchanged",
        "DatasetChecked=True DatasetUnchanged",
    )
    record = world.get("RetrainPolicy", "churn")["status"]["newData"]
    assert (record["sha256"], record["rows"]) == (SERVED_SHA, 500)
    assert world.condition("Triggered")["reason"] == "WaitingForTrigger"

    # It keeps polling, one probe at a time: the third stays alone while it runs.
    world.wait(lambda: len(world.probes()) == 3, "a third probe, pollSeconds later")
    third = world.probes()[2]
    world.wait(
        lambda: world.get("RetrainPolicy", "churn")["status"]["newData"].get("probeJob") == third,
        "third probe recorded as in flight",
    )
    time.sleep(15)  # longer than pollSeconds and the 10 s timer
    assert len(world.probes()) == 3
    assert world.jobs() == []
