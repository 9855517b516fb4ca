"""A RetrainPolicy following its TrainingJob: in flight, failed, gated, promoting."""

from __future__ import annotations

import datetime as dt

import pytest

from perennial_operator.decide.conditions import get_condition
from perennial_operator.decide.retrainpolicy.plan import Observed, retrainpolicy_plan

pytestmark = pytest.mark.unit

NOW = dt.datetime(2026, 11, 27, 14, 0, tzinfo=dt.UTC)
TRAINING = {
    "phase": "Training",
    "observedGeneration": 1,
    "lastTrigger": {"reason": "Drift", "time": "2026-11-27T13:55:00Z", "detail": "psi"},
    "lastTrainingJob": "churn-20261127135500",
}


def policy(status=None, **promotion):
    return {
        "metadata": {"name": "churn", "namespace": "ns", "uid": "u1", "generation": 1},
        "spec": {
            "inferenceService": "churn",
            "template": {"model": "churn", "task": "classification"},
            "triggers": {"drift": {"psi": 0.2, "minSamples": 500}},
            "cooldownSeconds": 3600,
            "promotion": {
                "mode": "Auto",
                "metric": "roc_auc",
                "minImprovement": 0.005,
                **promotion,
            },
        },
        "status": dict(status or TRAINING),
    }


def isvc(model=None, **status):
    return {
        "metadata": {"name": "churn"},
        "spec": {"model": model or {"name": "churn", "stage": "Production"}},
        "status": {
            "currentModelVersion": "churn-v1",
            "drift": {"psi": 0.5, "samples": 900},
            **status,
        },
    }


def job(phase, candidate=0.99, baseline=0.97, mv="churn-v2", baseline_metrics=True):
    status = {"phase": phase}
    if phase == "Succeeded":
        status["metrics"] = {"roc_auc": candidate}
        status["modelVersion"] = mv
        status["baselineMetrics"] = {"roc_auc": baseline} if baseline_metrics else {}
        if mv is None:
            del status["modelVersion"]
    return {"metadata": {"name": "churn-20261127135500"}, "status": status}


def plan_for(pol, svc, tj):
    return retrainpolicy_plan(pol, Observed(svc, tj), now=NOW)


@pytest.mark.parametrize(
    ("tj", "phase"),
    [
        (job("Pending"), "Training"),
        (job("Training"), "Training"),
        (job("Succeeded", mv=None), "Evaluating"),
    ],
    ids=["pending", "training", "succeeded-not-registered"],
)
def test_one_in_flight_blocks_every_trigger(tj, phase):
    plan = plan_for(policy(), isvc(), tj)
    assert plan.start is None and plan.promote is None and plan.events == []
    assert plan.status["phase"] == phase


def test_a_recorded_trigger_whose_job_is_missing_is_created_under_the_same_name():
    plan = plan_for(policy(), isvc(), None)
    assert plan.start is not None
    assert plan.start.name == "churn-20261127135500"
    assert (plan.start.trigger, plan.start.baseline) == ("20261127135500", "churn-v1")
    assert plan.events == [] and plan.status["phase"] == "Training"


def test_failed_training_promotes_nothing():
    plan = plan_for(policy(), isvc(), job("Failed"))
    promoted = get_condition(plan.status["conditions"], "Promoted")
    assert (promoted["status"], promoted["reason"]) == ("False", "TrainingFailed")
    assert plan.status["phase"] == "Idle" and plan.promote is None
    assert [(e.type, e.reason) for e in plan.events] == [("Warning", "TrainingFailed")]


def test_a_better_candidate_is_promoted_to_the_tracked_stage():
    plan = plan_for(policy(), isvc(model={"name": "churn", "stage": "Staging"}), job("Succeeded"))
    assert plan.promote == ("churn-v2", "Staging")
    assert plan.status["phase"] == "Promoting"
    assert plan.status["candidateModelVersion"] == "churn-v2"
    assert plan.status["lastPromotion"] == {
        "modelVersion": "churn-v2",
        "time": "2026-11-27T14:00:00Z",
        "metric": "roc_auc",
        "baseline": 0.97,
        "candidate": 0.99,
    }
    promoted = get_condition(plan.status["conditions"], "Promoted")
    assert (promoted["status"], promoted["reason"]) == ("True", "CandidatePromoted")
    assert [e.reason for e in plan.events] == ["Promoted"]
    assert "candidate=0.99 baseline=0.97" in plan.events[0].message


@pytest.mark.parametrize(
    ("pol", "svc", "tj", "reason"),
    [
        (policy(), isvc(), job("Succeeded", candidate=0.972), "BelowMinImprovement"),
        (policy(), isvc(), job("Succeeded", candidate=0.90), "BelowMinImprovement"),
        (policy(), isvc(), job("Succeeded", baseline_metrics=False), "BaselineMetricMissing"),
        (policy(mode="Manual"), isvc(), job("Succeeded"), "AwaitingApproval"),
        (policy(), isvc(model={"name": "churn", "version": 1}), job("Succeeded"), "VersionPinned"),
        (policy(), None, job("Succeeded"), "VersionPinned"),
    ],
    ids=["too-small", "worse", "no-baseline", "manual", "pinned", "service-gone"],
)
def test_not_promoted_records_why_with_the_numbers(pol, svc, tj, reason):
    plan = plan_for(pol, svc, tj)
    promoted = get_condition(plan.status["conditions"], "Promoted")
    assert (promoted["status"], promoted["reason"]) == ("False", reason)
    assert plan.promote is None and plan.status["phase"] == "Idle"
    assert plan.status["candidateModelVersion"] == "churn-v2"
    assert "lastPromotion" not in plan.status
    assert len(plan.events) == 1 and "churn-v2" in plan.events[0].message
    assert f"candidate={tj['status']['metrics']['roc_auc']:.6g}" in plan.events[0].message


def test_worse_candidate_event_carries_both_numbers():
    plan = plan_for(policy(), isvc(), job("Succeeded", candidate=0.90))
    assert plan.events[0].reason == "NotPromoted"
    assert "candidate=0.9 baseline=0.97" in plan.events[0].message


@pytest.mark.parametrize(
    ("canary", "phase"),
    [({"modelVersion": "churn-v2", "weight": 10}, "Promoting"), (None, "Idle")],
    ids=["canary-carries-it", "rollout-over"],
)
def test_promoting_lasts_while_the_canary_carries_the_candidate(canary, phase):
    status = {
        **TRAINING,
        "phase": "Promoting",
        "lastPromotion": {"modelVersion": "churn-v2"},
        "lastTrigger": {"reason": "Drift", "time": "2026-11-27T13:55:00Z"},
    }
    plan = plan_for(policy(status), isvc(canary=canary), None)
    assert plan.status["phase"] == phase
    assert plan.start is None  # the drift is still high, but the cooldown holds
