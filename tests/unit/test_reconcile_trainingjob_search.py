"""A fanned-out AutoML search reconciled against the in-memory FakeKube, playing the Job
controller by hand: plan → Indexed rung → finish → next rung → finish → one ModelVersion,
and an operator restarted at any point re-creates nothing."""

from __future__ import annotations

import json
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Gauge

from perennial_operator.api.group import API_VERSION, LABEL_TRAININGJOB_UID
from perennial_operator.config import OperatorConfig
from perennial_operator.metrics import TrainingJobPhases
from perennial_operator.reconcile.locks import KeyedLocks
from perennial_operator.reconcile.trainingjob import sync_trainingjob
from support.fake_kube import FakeKube

pytestmark = pytest.mark.unit

NS, UID = "ml", "0f6b2c1e-0000-4000-8000-00000000aaaa"
RESULT = {
    "outcome": "Succeeded",
    "metrics": {"accuracy": 0.96, "roc_auc": 0.991},
    "dataset": {"uri": "builtin://breast_cancer", "sha256": "ab" * 32, "rows": 569},
    "artifact": {"format": "onnx", "sha256": "cd" * 32},
    "algorithm": "svm",
}
BEST = {"algorithm": "svm", "params": {}, "score": 0.99, "rung": 0, "rows": 400}


def trainingjob() -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "TrainingJob",
        "metadata": {"name": "bc", "namespace": NS, "uid": UID},
        "spec": {
            "model": "bc",
            "task": "classification",
            "algorithm": "auto",
            "automl": {"parallelism": 4},
            "dataset": {"uri": "builtin://breast_cancer"},
        },
    }


def sync(kube: FakeKube) -> dict[str, Any]:
    gauge = Gauge("trainingjobs", "by phase", ["phase"], registry=CollectorRegistry())
    sync_trainingjob(kube, NS, "bc", OperatorConfig(), KeyedLocks(), TrainingJobPhases(gauge))
    return dict(kube.get(API_VERSION, "TrainingJob", NS, "bc").get("status") or {})


def jobs(kube: FakeKube) -> list[str]:
    return [j["metadata"]["name"] for j in kube.list("batch/v1", "Job", NS)]


def finish_job(kube: FakeKube, name: str, message: dict[str, Any], **status: Any) -> None:
    """What the Job controller and kubelet leave: the Job Complete, its pod's message."""
    job = kube.get("batch/v1", "Job", NS, name)
    job["status"] = {"conditions": [{"type": "Complete", "status": "True"}], **status}
    kube.put(job)
    done = {"terminated": {"exitCode": 0, "reason": "Completed", "message": json.dumps(message)}}
    kube.put({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": f"{name}-x", "namespace": NS, "labels": {LABEL_TRAININGJOB_UID: UID},
                     "ownerReferences": [{"uid": job["metadata"]["uid"], "controller": True}]},
        "status": {"phase": "Succeeded", "containerStatuses": [{"name": "train", "state": done}]},
    })  # fmt: skip


def test_the_search_runs_step_by_step_and_registers_one_model() -> None:
    kube = FakeKube(trainingjob())
    status = sync(kube)
    assert jobs(kube) == ["bc-plan"] and status["progress"] == "planning"
    assert status["phase"] == "Pending"
    sync(kube)  # nothing new while the plan runs
    assert jobs(kube) == ["bc-plan"]

    finish_job(kube, "bc-plan", {"outcome": "Planned", "rungs": [400, 1200], "candidates": 5})
    status = sync(kube)
    rung0 = kube.get("batch/v1", "Job", NS, "bc-rung-0")
    assert rung0["spec"]["completions"] == 5 and rung0["spec"]["parallelism"] == 4
    assert status["automl"] == {"step": "rung-0", "rung": 0, "candidates": 5, "candidatesDone": 0}
    assert status["progress"] == "rung 0: 0/5"

    # Two candidates done: progress moves, the phase is Training.
    rung0["status"] = {"active": 3, "completedIndexes": "0,2", "startTime": "2026-01-01T00:00:00Z"}
    kube.put(rung0)
    kube.put({"apiVersion": "v1", "kind": "Pod", "metadata": {
        "name": "bc-rung-0-1", "namespace": NS, "labels": {LABEL_TRAININGJOB_UID: UID},
        "ownerReferences": [{"uid": rung0["metadata"]["uid"], "controller": True}]},
        "status": {"phase": "Running", "containerStatuses": [
            {"name": "train", "state": {"running": {}}}]}})  # fmt: skip
    status = sync(kube)
    assert status["progress"] == "rung 0: 2/5" and status["phase"] == "Training"
    assert "2/5 candidates of rung 0, 4 at a time" in status["message"]

    # One index failed (FailIndex): the Job is Failed, the search goes on to finish-0.
    rung0 = kube.get("batch/v1", "Job", NS, "bc-rung-0")
    rung0["status"] = {"completedIndexes": "0-3", "failedIndexes": "4", "conditions": [
        {"type": "Failed", "status": "True", "reason": "FailedIndexes"}]}  # fmt: skip
    kube.put(rung0)
    status = sync(kube)
    assert "bc-finish-0" in jobs(kube) and status["phase"] != "Failed"
    args = kube.get("batch/v1", "Job", NS, "bc-finish-0")["spec"]["template"]["spec"][
        "containers"][0]["args"]  # fmt: skip
    assert args[0] == "finish" and args[-2:] == ["--rung", "0"]

    finish_job(kube, "bc-finish-0", {"outcome": "NextRung", "rung": 1, "candidates": 2,
                                      "evaluated": 4, "best": BEST})  # fmt: skip
    # The operator restarts (a new process, the same objects) between the rungs.
    kube = FakeKube(*kube.objects.values())
    status = sync(kube)
    assert kube.verbs().count("apply Job/bc-rung-1") == 1
    assert [v for v in kube.verbs() if v.startswith("apply Job")] == ["apply Job/bc-rung-1"]
    assert kube.get("batch/v1", "Job", NS, "bc-rung-1")["spec"]["completions"] == 2
    assert status["automl"]["best"] == BEST and status["automl"]["rung"] == 1

    finish_job(kube, "bc-rung-1", {"outcome": "Trial"}, completedIndexes="0-1")
    sync(kube)
    finish_job(kube, "bc-finish-1", RESULT)
    status = sync(kube)
    models = [m["metadata"]["name"] for m in kube.list(API_VERSION, "ModelVersion", NS)]
    assert models == ["bc-v1"]
    assert (status["phase"], status["modelVersion"]) == ("Succeeded", "bc-v1")
    assert status["algorithm"] == "svm" and status["metrics"]["roc_auc"] == 0.991
    sync(kube)
    assert len(kube.list(API_VERSION, "ModelVersion", NS)) == 1
    # Every step Job is owned by the TrainingJob: deleting it leaves nothing behind.
    for job in kube.list("batch/v1", "Job", NS):
        assert job["metadata"]["ownerReferences"][0]["uid"] == UID


def test_a_failed_plan_fails_the_trainingjob_with_the_trainers_report() -> None:
    kube = FakeKube(trainingjob())
    sync(kube)
    plan = kube.get("batch/v1", "Job", NS, "bc-plan")
    failed = {"type": "Failed", "status": "True", "reason": "PodFailurePolicy", "message": "exit 3"}
    plan["status"] = {"conditions": [failed]}
    kube.put(plan)
    report = {"outcome": "DataInvalid", "message": "1 failing check", "failures": [
        {"check": "min_rows", "column": None, "observed": 3, "expected": 10}]}  # fmt: skip
    kube.put({"apiVersion": "v1", "kind": "Pod", "metadata": {
        "name": "bc-plan-x", "namespace": NS, "labels": {LABEL_TRAININGJOB_UID: UID},
        "ownerReferences": [{"uid": plan["metadata"]["uid"], "controller": True}]},
        "status": {"phase": "Failed", "containerStatuses": [{"name": "train", "state": {
            "terminated": {"exitCode": 3, "message": json.dumps(report)}}}]}})  # fmt: skip
    status = sync(kube)
    assert status["phase"] == "Failed" and "min_rows" in status["message"]
    assert jobs(kube) == ["bc-plan"]
