"""Finding 3, the operator half (issue 20): a RetrainPolicy starts at most
spec.maxTrainingJobsPerDay TrainingJobs in any 24 hours, whatever its cooldown. One hostile
feedback request set the live metric to 0 and the policy started 15 TrainingJobs in 15
minutes; the count is taken from the TrainingJobs themselves (their trigger label), so a
lost status does not reset it."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from perennial_operator.api.group import API_VERSION, LABEL_RETRAINPOLICY, LABEL_TRIGGER
from perennial_operator.api.names import trigger_id
from perennial_operator.config import OperatorConfig
from perennial_operator.reconcile.locks import KeyedLocks
from perennial_operator.reconcile.retrainpolicy import sync_retrainpolicy
from support.fake_kube import FakeKube

pytestmark = pytest.mark.unit

NS = "ml"


def world(hours_ago: list[float], cap: int | None) -> FakeKube:
    spec: dict[str, Any] = {
        "inferenceService": "churn",
        "cooldownSeconds": 0,  # no cooldown: only the daily cap holds it
        "template": {"model": "churn", "task": "classification",
                     "dataset": {"uri": "builtin://breast_cancer", "target": "target"}},
        "triggers": {"drift": {"psi": 0.2, "minSamples": 500}},
    }  # fmt: skip
    if cap is not None:
        spec["maxTrainingJobsPerDay"] = cap
    policy = {
        "apiVersion": API_VERSION, "kind": "RetrainPolicy",
        "metadata": {"name": "churn", "namespace": NS}, "spec": spec, "status": {},
    }  # fmt: skip
    isvc = {
        "apiVersion": API_VERSION, "kind": "InferenceService",
        "metadata": {"name": "churn", "namespace": NS},
        "spec": {"model": {"name": "churn", "stage": "Production"}},
        "status": {"currentModelVersion": "churn-v1", "drift": {"psi": 0.9, "samples": 900}},
    }  # fmt: skip
    now = dt.datetime.now(dt.UTC)
    earlier = []
    for i, hours in enumerate(hours_ago):
        tid = trigger_id(now - dt.timedelta(hours=hours))
        earlier.append({
            "apiVersion": API_VERSION, "kind": "TrainingJob",
            "metadata": {"name": f"churn-retrain-{i}", "namespace": NS,
                         "labels": {LABEL_RETRAINPOLICY: "churn", LABEL_TRIGGER: tid}},
            "spec": {"model": "churn"}, "status": {"phase": "Failed"},
        })  # fmt: skip
    return FakeKube(policy, isvc, *earlier)


def started(kube: FakeKube) -> list[str]:
    sync_retrainpolicy(kube, NS, "churn", OperatorConfig(), KeyedLocks())
    return [w for w in kube.verbs("TrainingJob") if w.startswith("create")]


def test_the_daily_cap_holds_a_policy_that_started_enough_today():
    kube = world([1, 5, 23], cap=3)
    assert started(kube) == []
    policy = kube.get(API_VERSION, "RetrainPolicy", NS, "churn")
    assert policy is not None
    reasons = {c["reason"] for c in policy["status"].get("conditions") or []}
    assert "DailyLimitReached" in reasons


def test_jobs_older_than_a_day_do_not_count():
    assert len(started(world([25, 30, 47], cap=3))) == 1


def test_the_default_cap_is_finite():
    assert started(world([0.1 * i for i in range(1, 25)], cap=None)) == []


def test_jobs_pruned_by_history_limit_still_count():
    """historyLimit below the cap deletes finished jobs of the same day: the count must not
    come from the kept jobs only (status.recentTriggers remembers the ones started)."""
    kube = world([], cap=3)
    now = dt.datetime.now(dt.UTC)
    recorded = [trigger_id(now - dt.timedelta(hours=h)) for h in (1, 2, 3)]
    kube.patch_status(API_VERSION, "RetrainPolicy", NS, "churn", {"recentTriggers": recorded})
    assert started(kube) == []


def test_a_started_job_is_recorded_for_the_daily_count():
    kube = world([], cap=3)
    assert len(started(kube)) == 1
    policy = kube.get(API_VERSION, "RetrainPolicy", NS, "churn")
    assert policy is not None
    recorded = policy["status"]["recentTriggers"]
    assert len(recorded) == 1
    (job,) = kube.list(API_VERSION, "TrainingJob", NS)
    assert recorded[0] == job["metadata"]["labels"][LABEL_TRIGGER]
