"""The TrainingJob reconcile against the in-memory FakeKube: a trained model is registered
once, whatever crashes in between, and Events go out before the status that moves past them."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException
from prometheus_client import REGISTRY, CollectorRegistry, Gauge

from perennial_operator.api.group import API_VERSION, LABEL_TRAININGJOB_UID
from perennial_operator.config import OperatorConfig
from perennial_operator.metrics import TrainingJobPhases
from perennial_operator.reconcile.locks import KeyedLocks
from perennial_operator.reconcile.trainingjob import sync_trainingjob
from support.fake_kube import FakeKube
from support.trainingjob_objects import NS, UID, finished_job, trainingjob

pytestmark = pytest.mark.unit


def sync(kube: FakeKube, name: str = "churn-1") -> None:
    gauge = Gauge("trainingjobs", "by phase", ["phase"], registry=CollectorRegistry())
    phases = TrainingJobPhases(gauge)
    sync_trainingjob(kube, NS, name, OperatorConfig(), KeyedLocks(), phases)


def modelversions(kube: FakeKube) -> list[str]:
    return [m["metadata"]["name"] for m in kube.list(API_VERSION, "ModelVersion", NS)]


def test_a_trained_model_is_registered_once_then_recorded():
    kube = FakeKube(trainingjob(), *finished_job())
    sync(kube)
    assert modelversions(kube) == ["churn-v1"]
    writes = kube.verbs()
    assert writes.index("create ModelVersion/churn-v1") < writes.index(
        "patch_status TrainingJob/churn-1"
    )
    status = kube.get(API_VERSION, "TrainingJob", NS, "churn-1")["status"]
    assert (status["phase"], status["modelVersion"]) == ("Succeeded", "churn-v1")
    sync(kube)  # a finished job is never registered again
    assert modelversions(kube) == ["churn-v1"]


def test_a_crash_before_the_status_write_registers_no_second_model():
    kube = FakeKube(trainingjob(), *finished_job())
    kube.fail("patch_status", "TrainingJob", lambda: ApiException(status=500, reason="crash"))
    with pytest.raises(ApiException):
        sync(kube)
    assert modelversions(kube) == ["churn-v1"]
    kube = FakeKube(*kube.objects.values())  # the operator restarts
    sync(kube)
    assert modelversions(kube) == ["churn-v1"]  # found by its trainingjob-uid label
    assert "create ModelVersion/churn-v1" not in kube.verbs()
    status = kube.get(API_VERSION, "TrainingJob", NS, "churn-1")["status"]
    assert status["modelVersion"] == "churn-v1"


def test_two_jobs_of_one_model_take_the_next_versions():
    other = "0f6b2c1e-0000-4000-8000-000000000002"
    kube = FakeKube(
        trainingjob(),
        *finished_job(),
        trainingjob("churn-2", other),
        *finished_job("churn-2", other),
    )
    sync(kube, "churn-1")
    sync(kube, "churn-2")
    assert modelversions(kube) == ["churn-v1", "churn-v2"]
    mv = kube.get(API_VERSION, "ModelVersion", NS, "churn-v2")
    assert mv["metadata"]["labels"][LABEL_TRAININGJOB_UID] == other


def test_events_go_out_before_the_status_that_moves_past_them():
    kube = FakeKube(trainingjob(), *finished_job())
    sync(kube)
    writes = kube.verbs()
    last_event = max(i for i, w in enumerate(writes) if w == "event TrainingJob/churn-1")
    assert last_event < writes.index("patch_status TrainingJob/churn-1")
    assert kube.reasons() == ["Registered", "Succeeded"]


def test_a_new_job_gets_its_artifact_claim_configmap_and_job():
    kube = FakeKube(trainingjob())
    sync(kube)
    assert kube.verbs()[:3] == [
        "create PersistentVolumeClaim/perennial-artifacts",  # missing: made before the Job
        "create ConfigMap/churn-1-spec",
        "create Job/churn-1-train",
    ]
    assert kube.get(API_VERSION, "TrainingJob", NS, "churn-1")["status"]["phase"] == "Pending"


@pytest.mark.parametrize(("algorithm", "warned"), [("random_forest", True), ("xgboost", False)])
def test_a_gpu_asked_for_an_algorithm_that_cannot_use_it_is_said_once(algorithm, warned):
    tj = trainingjob()
    tj["spec"] |= {"algorithm": algorithm, "resources": {"gpu": 1}}
    kube = FakeKube(tj)
    sync(kube)
    sync(kube)  # the Job exists now: nothing is said again
    warnings = [e for e in kube.events if e["reason"] == "GPUNotUsed"]
    assert len(warnings) == (1 if warned else 0)
    if warned:
        assert warnings[0]["type"] == "Warning"
        assert "random_forest does not use a GPU" in warnings[0]["message"]
    job = kube.get("batch/v1", "Job", NS, "churn-1-train")
    limits = job["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert ("nvidia.com/gpu" in limits) is not warned


def test_the_outcome_is_counted_once_when_the_job_finishes():
    def succeeded() -> float:
        labels = {"namespace": NS, "outcome": "Succeeded", "reason": "TrainingSucceeded"}
        return (
            REGISTRY.get_sample_value("perennial_operator_trainingjob_outcomes_total", labels)
            or 0.0
        )

    before = succeeded()
    kube = FakeKube(trainingjob(), *finished_job())
    sync(kube)
    assert succeeded() == before + 1
    sync(kube)  # finished: recorded, not counted again
    sync(kube)
    assert succeeded() == before + 1


def test_a_new_job_is_taken_from_the_create_answer_and_nothing_is_read_first():
    # A new TrainingJob has no Job yet, and a Job made this instant no pods: reading them is
    # a request per TrainingJob that can only answer "none" (bench/operator/scale.py).
    kube = FakeKube(trainingjob())
    for verb, kind in [("list", "Pod"), ("get", "Job"), ("get", "ConfigMap")]:
        kube.fail(verb, kind, lambda k=kind: AssertionError(f"{k} read for a new TrainingJob"))
    sync(kube)
    made = [v for v in kube.verbs() if v.split("/")[0].endswith(("ConfigMap", "Job"))]
    assert made[:2] == ["create ConfigMap/churn-1-spec", "create Job/churn-1-train"]
    assert kube.get(API_VERSION, "TrainingJob", NS, "churn-1")["status"]["phase"] == "Pending"


@pytest.mark.parametrize("parallelism", [1, 4], ids=["single-job", "fanned-out"])
def test_a_missing_baseline_waits_with_its_own_reason_and_starts_nothing(parallelism: int):
    tj = trainingjob()
    tj["spec"] |= {
        "algorithm": "auto",
        "automl": {"parallelism": parallelism},
        "baseline": {"modelVersion": "churn-v9"},
    }
    kube = FakeKube(tj)
    sync(kube)
    status = kube.get(API_VERSION, "TrainingJob", NS, "churn-1")["status"]
    (scheduled,) = [x for x in status["conditions"] if x["type"] == "Scheduled"]
    assert (scheduled["status"], scheduled["reason"]) == ("False", "BaselineNotFound")
    assert "churn-v9" in scheduled["message"] and status["phase"] == "Pending"
    assert kube.list("batch/v1", "Job", NS) == []


def test_a_job_deleted_while_its_sync_runs_is_not_counted_by_it():
    registry = CollectorRegistry()
    phases = TrainingJobPhases(Gauge("trainingjobs", "by phase", ["phase"], registry=registry))

    class DeletedMidSync(FakeKube):
        def patch_status(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
            phases.forget(UID)  # its DELETED event, handled while the sync writes
            return super().patch_status(*args, **kwargs)

    kube = DeletedMidSync(trainingjob())
    sync_trainingjob(kube, NS, "churn-1", OperatorConfig(), KeyedLocks(), phases)
    assert "patch_status TrainingJob/churn-1" in kube.verbs()  # the sync did publish a phase
    counted = {p: registry.get_sample_value("trainingjobs", {"phase": p}) for p in ("Pending",)}
    assert counted == {"Pending": None}  # ... which the deletion kept out of the gauge
    assert phases.tombstones() == 0  # and nothing is kept once the sync is over
