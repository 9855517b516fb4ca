"""The RetrainPolicy reconcile against the in-memory FakeKube: a trigger is recorded in status
before its TrainingJob exists, so a crash in between starts that job once, under its name,
and never a second one; a candidate that passes the gate is promoted once."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from perennial_operator.api.group import API_VERSION
from perennial_operator.config import OperatorConfig
from perennial_operator.reconcile.locks import KeyedLocks
from perennial_operator.reconcile.retrainpolicy import sync_retrainpolicy
from support.fake_kube import FakeKube

pytestmark = pytest.mark.unit

NS = "ml"


def obj(kind: str, name: str, spec: dict[str, Any], status: dict[str, Any]) -> dict[str, Any]:
    meta = {"name": name, "namespace": NS}
    return {
        "apiVersion": API_VERSION,
        "kind": kind,
        "metadata": meta,
        "spec": spec,
        "status": status,
    }


def world() -> FakeKube:
    policy = obj(
        "RetrainPolicy",
        "churn",
        {
            "inferenceService": "churn",
            "cooldownSeconds": 3600,
            "template": {
                "model": "churn",
                "task": "classification",
                "dataset": {"uri": "builtin://breast_cancer", "target": "target"},
            },
            "triggers": {"drift": {"psi": 0.2, "minSamples": 500}},
            "promotion": {"mode": "Auto", "metric": "roc_auc", "minImprovement": 0.005},
        },
        {},
    )
    service = obj(
        "InferenceService",
        "churn",
        {"model": {"name": "churn", "stage": "Production"}},
        {"currentModelVersion": "churn-v1", "drift": {"psi": 0.4, "samples": 900}},
    )
    return FakeKube(policy, service)


def sync(kube: FakeKube) -> None:
    sync_retrainpolicy(kube, NS, "churn", OperatorConfig(), KeyedLocks())


def jobs(kube: FakeKube) -> list[str]:
    return [j["metadata"]["name"] for j in kube.list(API_VERSION, "TrainingJob", NS)]


def test_the_trigger_is_in_status_before_its_job_exists_and_events_before_the_last_status():
    kube = world()
    sync(kube)
    writes = kube.verbs()
    (job,) = jobs(kube)
    recorded = writes.index("patch_status RetrainPolicy/churn")
    assert recorded < writes.index(f"create TrainingJob/{job}")
    status = kube.get(API_VERSION, "RetrainPolicy", NS, "churn")["status"]
    assert (status["phase"], status["lastTrainingJob"]) == ("Training", job)
    assert kube.writes[recorded].detail["lastTrainingJob"] == job
    assert kube.reasons() == ["Triggered", "TrainingStarted"]
    assert writes.index("event RetrainPolicy/churn") < recorded
    sync(kube)  # the job runs: nothing new starts
    assert jobs(kube) == [job]


def test_a_crash_between_the_record_and_the_create_starts_that_job_once():
    kube = world()
    kube.fail("create", "TrainingJob", lambda: ApiException(status=500, reason="crash"))
    with pytest.raises(ApiException):
        sync(kube)
    recorded = kube.get(API_VERSION, "RetrainPolicy", NS, "churn")["status"]["lastTrainingJob"]
    assert jobs(kube) == [] and kube.reasons() == ["Triggered", "TrainingStarted"]
    kube = FakeKube(*kube.objects.values())  # the operator restarts
    sync(kube)
    sync(kube)
    assert jobs(kube) == [recorded]
    assert kube.reasons() == []  # the same trigger: no second Triggered


def test_a_candidate_that_passes_the_gate_is_promoted_once():
    kube = world()
    sync(kube)
    (job,) = jobs(kube)
    kube.patch_status(
        API_VERSION,
        "TrainingJob",
        NS,
        job,
        {
            "phase": "Succeeded",
            "modelVersion": "churn-v2",
            "metrics": {"roc_auc": 0.95},
            "baselineMetrics": {"roc_auc": 0.90},
        },
    )
    kube.put(obj("ModelVersion", "churn-v2", {"model": "churn", "version": 2, "stage": "None"}, {}))
    sync(kube)
    sync(kube)
    assert kube.verbs("ModelVersion") == ["apply ModelVersion/churn-v2"]
    assert kube.get(API_VERSION, "ModelVersion", NS, "churn-v2")["spec"]["stage"] == "Production"
    status = kube.get(API_VERSION, "RetrainPolicy", NS, "churn")["status"]
    assert status["lastPromotion"]["modelVersion"] == "churn-v2"
    assert kube.reasons().count("Promoted") == 1


def test_finished_jobs_beyond_the_history_limit_are_deleted_and_models_kept():
    kube = world()
    policy = kube.get(API_VERSION, "RetrainPolicy", NS, "churn")
    policy["spec"]["historyLimit"] = 2
    policy["spec"]["triggers"] = {}  # nothing fires: only the history is at stake
    policy["status"] = {"phase": "Idle", "lastTrainingJob": "churn-3"}
    old = []
    for n in range(4):
        tj = obj("TrainingJob", f"churn-{n}", {}, {"phase": "Succeeded", "modelVersion": f"v{n}"})
        tj["metadata"]["labels"] = {"perennial.dev/retrainpolicy": "churn"}
        tj["metadata"]["creationTimestamp"] = f"2026-01-01T00:00:0{n}Z"
        old.append(tj)
    other = obj("TrainingJob", "by-hand", {}, {"phase": "Failed"})  # not this policy's
    kube = FakeKube(policy, *old, other, *kube.list(API_VERSION, "InferenceService", NS))
    sync(kube)
    assert sorted(jobs(kube)) == ["by-hand", "churn-2", "churn-3"]
    sync(kube)  # nothing more goes
    assert sorted(jobs(kube)) == ["by-hand", "churn-2", "churn-3"]
