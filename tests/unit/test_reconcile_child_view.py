"""The TrainingJob children the watches showed (reconcile/child_view.py): what counts as
news, what the sync then reads from it instead of the API, and what it still reads."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException
from prometheus_client import CollectorRegistry, Gauge

from perennial_operator.api.group import API_VERSION
from perennial_operator.config import OperatorConfig
from perennial_operator.metrics import TrainingJobPhases
from perennial_operator.reconcile.child_view import CLAIM_TRUSTED_SECONDS, ChildView
from perennial_operator.reconcile.locks import KeyedLocks
from perennial_operator.reconcile.trainingjob import sync_trainingjob
from support.fake_kube import FakeKube
from support.trainingjob_objects import NS, UID, finished_job, running_job, trainingjob

pytestmark = pytest.mark.unit

JOB_UID = f"job-{UID}"


def synced_before() -> dict[str, Any]:
    """The TrainingJob once a sync has written its status (its Job may exist)."""
    tj = trainingjob()
    tj["status"] = {"phase": "Pending", "observedGeneration": 1}
    return tj


def refuse_reads(kube: FakeKube, *kinds: str) -> None:
    for kind in kinds:
        for verb in ("get", "list"):
            kube.fail(verb, kind, lambda: ApiException(status=599, reason="read refused"))


def sync(kube: FakeKube, view: ChildView | None, name: str = "churn-1") -> dict[str, Any]:
    gauge = Gauge("trainingjobs", "by phase", ["phase"], registry=CollectorRegistry())
    sync_trainingjob(kube, NS, name, OperatorConfig(), KeyedLocks(), TrainingJobPhases(gauge), view)
    return dict(kube.get(API_VERSION, "TrainingJob", NS, name)["status"])


def test_an_event_that_changes_nothing_the_sync_reads_is_no_news():
    view = ChildView()
    job, _ = running_job()
    assert view.saw_job(job)  # new
    assert not view.saw_job(copy.deepcopy(job))  # the same again
    touched = copy.deepcopy(job)
    touched["metadata"]["resourceVersion"] = "99"
    touched["status"]["ready"] = 1  # not read by the sync
    assert not view.saw_job(touched)
    touched["status"]["conditions"] = [{"type": "Complete", "status": "True"}]
    assert view.saw_job(touched)
    assert view.saw_job(touched, deleted=True)
    assert not view.saw_job(touched, deleted=True)  # already gone
    assert view.job(NS, "churn-1-train") is None


def test_only_the_jobs_own_pods_count_and_deleted_ones_are_forgotten():
    view = ChildView()
    _, pod = running_job()
    assert view.saw_pod(pod)
    bound = copy.deepcopy(pod)
    bound["status"]["podIP"] = "10.0.0.7"
    bound["spec"] = {"nodeName": "n1"}
    assert not view.saw_pod(bound)  # the node and the IP: nothing the sync reads
    stranger = copy.deepcopy(pod)  # labelled as ours by someone, owned by another Job
    stranger["metadata"]["name"] = "a-stranger"
    stranger["metadata"]["ownerReferences"] = [{"uid": "other", "controller": True}]
    assert view.saw_pod(stranger)
    assert [p.name for p in view.pods(UID, JOB_UID)] == ["churn-1-train-x"]
    assert view.sizes() == (0, 2)
    view.saw_pod(bound, deleted=True)
    view.saw_pod(stranger, deleted=True)
    assert view.sizes() == (0, 0)  # nothing outlives the objects


def test_a_running_job_is_read_from_the_view_with_the_same_status_as_from_the_api():
    job, pod = running_job()
    from_api = sync(FakeKube(synced_before(), job, pod), None)
    view = ChildView()
    view.saw_job(job)
    view.saw_pod(pod)
    kube = FakeKube(synced_before(), job, pod)
    refuse_reads(kube, "Job", "Pod")  # a read would raise
    assert sync(kube, view) == from_api
    assert from_api["phase"] == "Training"


def test_a_finished_jobs_result_is_read_from_the_api_not_from_pods_not_yet_seen():
    job, pod = finished_job()
    view = ChildView()
    view.saw_job(job)  # the Job's Complete event came first; the pod's is still on its way
    kube = FakeKube(trainingjob(), job, pod)
    status = sync(kube, view)
    assert (status["phase"], status["modelVersion"]) == ("Succeeded", "churn-v1")
    assert [m["metadata"]["name"] for m in kube.list(API_VERSION, "ModelVersion", NS)] == [
        "churn-v1"
    ]


@pytest.mark.parametrize("tj", [synced_before(), trainingjob()], ids=["synced", "never-synced"])
def test_a_job_the_view_has_not_seen_is_read_from_the_api(tj: dict[str, Any]):
    # A restart: nothing seen yet. Never synced: the sync that made the Job crashed before
    # its status write; the create finds the Job, and its pods are read from the API.
    job, pod = running_job()
    kube = FakeKube(tj, job, pod)
    assert sync(kube, ChildView())["phase"] == "Training"
    assert kube.verbs("Job") == []  # found, not made again nor changed


def test_a_new_job_is_in_the_view_so_its_added_event_is_no_news():
    kube = FakeKube(trainingjob())
    view = ChildView()
    sync(kube, view)
    assert "create Job/churn-1-train" in kube.verbs()
    assert not view.saw_job(kube.get("batch/v1", "Job", NS, "churn-1-train"))


def test_an_artifact_claim_seen_lately_is_not_read_again_for_each_new_job():
    now = [1000.0]
    view = ChildView(clock=lambda: now[0])
    kube = FakeKube(trainingjob("a-1", "uid-a"), trainingjob("a-2", "uid-b"))
    sync(kube, view, "a-1")
    refuse_reads(kube, "PersistentVolumeClaim")
    sync(kube, view, "a-2")  # no read of the claim made a moment ago
    assert kube.get("batch/v1", "Job", NS, "a-2-train") is not None
    now[0] += CLAIM_TRUSTED_SECONDS
    assert not view.claim_known(NS, "perennial-artifacts")  # then it is looked at again


def test_a_trainingjob_its_added_event_showed_is_not_read_again():
    kube = FakeKube(trainingjob())
    created = kube.get(API_VERSION, "TrainingJob", NS, "churn-1")
    refuse_reads(kube, "TrainingJob")
    gauge = Gauge("trainingjobs", "by phase", ["phase"], registry=CollectorRegistry())
    decision = sync_trainingjob(
        kube, NS, "churn-1", OperatorConfig(), KeyedLocks(), TrainingJobPhases(gauge),
        ChildView(), created,
    )  # fmt: skip
    assert decision is not None and decision.phase == "Pending"
    assert "create Job/churn-1-train" in kube.verbs()
