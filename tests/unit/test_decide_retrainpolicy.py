from __future__ import annotations

import datetime as dt

import pytest

from perennial_operator.decide.conditions import get_condition
from perennial_operator.decide.retrainpolicy.plan import Observed, retrainpolicy_plan

pytestmark = pytest.mark.unit

NOW = dt.datetime(2026, 11, 27, 14, 0, tzinfo=dt.UTC)
PAST = "2026-11-27T13:00:00Z"
FUTURE = "2026-11-27T15:00:00Z"
DRIFT = {"psi": 0.2, "minSamples": 500}
PERF = {"metric": "accuracy", "below": 0.85, "minSamples": 200}


def ago(**delta):
    return (NOW - dt.timedelta(**delta)).strftime("%Y-%m-%dT%H:%M:%SZ")


def policy(triggers=None, status=None, **spec):
    return {
        "metadata": {"name": "churn", "namespace": "ns", "uid": "u1", "generation": 1},
        "spec": {
            "inferenceService": "churn",
            "template": {"model": "churn", "task": "classification"},
            "triggers": triggers or {"drift": DRIFT},
            "cooldownSeconds": 3600,
            "promotion": {"mode": "Auto", "metric": "roc_auc", "minImprovement": 0.005},
            **spec,
        },
        "status": status or {},
    }


def isvc(current="churn-v1", model=None, **status):
    return {
        "metadata": {"name": "churn"},
        "spec": {"model": model or {"name": "churn", "stage": "Production"}},
        "status": {"currentModelVersion": current, **status} if current else status,
    }


def drifted(psi=0.31, samples=600):
    return isvc(drift={"psi": psi, "samples": samples})


def live(value, samples=300, name="accuracy"):
    return isvc(liveMetric={"name": name, "value": value, "samples": samples})


IDLE = {"phase": "Idle", "observedGeneration": 1}
SCHED = {"schedule": "0 * * * *"}

TRIGGER_CASES = [
    ("drift-above", policy(), drifted(), "Drift", None),
    ("drift-below", policy(), drifted(psi=0.1), None, "WaitingForTrigger"),
    ("drift-too-few-samples", policy(), drifted(samples=100), None, "WaitingForTrigger"),
    ("drift-not-measured", policy(), isvc(), None, "WaitingForTrigger"),
    ("performance-below", policy({"performance": PERF}), live(0.8), "Performance", None),
    ("performance-above", policy({"performance": PERF}), live(0.9), None, "WaitingForTrigger"),
    ("performance-few-samples", policy({"performance": PERF}), live(0.5, 10), None,
     "WaitingForTrigger"),
    ("performance-other-metric", policy({"performance": PERF}), live(0.5, name="mae"), None,
     "WaitingForTrigger"),
    ("schedule-due", policy(SCHED, {**IDLE, "nextScheduledTime": PAST}), isvc(), "Schedule",
     None),
    ("schedule-not-due", policy(SCHED, {**IDLE, "nextScheduledTime": FUTURE}), isvc(), None,
     "WaitingForTrigger"),
    ("schedule-first-seen", policy(SCHED), isvc(), None, "WaitingForTrigger"),
    ("schedule-edited", policy(SCHED, {"phase": "Idle", "observedGeneration": 0,
                                       "nextScheduledTime": PAST}), isvc(), None,
     "WaitingForTrigger"),
    ("drift-before-schedule", policy({**SCHED, "drift": DRIFT},
                                     {**IDLE, "nextScheduledTime": PAST}), drifted(), "Drift",
     None),
    ("cooldown", policy(status={**IDLE, "lastTrigger": {"time": ago(minutes=10)}}), drifted(),
     None, "CoolingDown"),
    ("cooldown-over", policy(status={**IDLE, "lastTrigger": {"time": ago(hours=2)}}),
     drifted(), "Drift", None),
    ("cooldown-zero", policy(status={**IDLE, "lastTrigger": {"time": ago(seconds=1)}},
                             cooldownSeconds=0), drifted(), "Drift", None),
    ("suspended", policy(suspend=True), drifted(), None, "Suspended"),
    ("no-service", policy(), None, None, "InferenceServiceNotFound"),
    ("no-serving-version", policy(), isvc(current=None, drift={"psi": 0.9, "samples": 900}),
     None, "NoServingVersion"),
    ("invalid-schedule", policy({"schedule": "a b c d e"}), isvc(), None, "InvalidSchedule"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("pol", "svc", "fires", "held"),
    [c[1:] for c in TRIGGER_CASES],
    ids=[c[0] for c in TRIGGER_CASES],
)
def test_trigger_decisions(pol, svc, fires, held):
    plan = retrainpolicy_plan(pol, Observed(svc, None), now=NOW)
    triggered = get_condition(plan.status["conditions"], "Triggered")
    if fires:
        assert plan.start is not None and plan.start.reason == fires
        assert plan.start.baseline == "churn-v1"
        assert plan.start.name == "churn-20261127140000"
        assert plan.status["phase"] == "Training"
        assert plan.status["lastTrainingJob"] == plan.start.name
        assert plan.status["lastTrigger"]["reason"] == fires
        assert plan.status["lastTrigger"]["time"] == "2026-11-27T14:00:00Z"
        assert triggered["status"] == "True"
        assert [e.reason for e in plan.events] == ["Triggered", "TrainingStarted"]
    else:
        assert plan.start is None and plan.events == []
        assert (triggered["status"], triggered["reason"]) == ("False", held)
        assert plan.status["phase"] == ("Suspended" if held == "Suspended" else "Idle")


def test_schedule_moves_on_after_firing_and_when_first_seen():
    fired = retrainpolicy_plan(
        policy(SCHED, {**IDLE, "nextScheduledTime": PAST}), Observed(isvc(), None), now=NOW
    )
    first = retrainpolicy_plan(policy(SCHED), Observed(isvc(), None), now=NOW)
    assert fired.status["nextScheduledTime"] == first.status["nextScheduledTime"]
    assert first.status["nextScheduledTime"] == "2026-11-27T15:00:00Z"


def test_a_due_schedule_during_a_cooldown_is_skipped_not_queued():
    status = {**IDLE, "nextScheduledTime": PAST, "lastTrigger": {"time": ago(minutes=5)}}
    plan = retrainpolicy_plan(policy(SCHED, status), Observed(isvc(), None), now=NOW)
    assert plan.start is None
    assert plan.status["nextScheduledTime"] == "2026-11-27T15:00:00Z"


def test_cooldown_without_a_firing_trigger_leaves_the_last_trigger_condition_alone():
    status = {**IDLE, "lastTrigger": {"time": ago(minutes=10)}}
    plan = retrainpolicy_plan(policy(status=status), Observed(drifted(psi=0.0), None), now=NOW)
    assert plan.start is None and "conditions" not in status
    assert get_condition(plan.status.get("conditions") or [], "Triggered") is None


def _dataset_checked(reason, ok="False"):
    return {"type": "DatasetChecked", "status": ok, "reason": reason, "message": "m",
            "lastTransitionTime": PAST, "observedGeneration": 1}  # fmt: skip


HEALTH_CASES = [
    # id, policy, its InferenceService -> Ready (status, reason), Stalled (None: absent)
    ("idle-waiting", policy(status=IDLE), isvc(), ("True", "Idle"), None),
    ("suspended", policy(status=IDLE, suspend=True), isvc(), ("True", "Suspended"), None),
    ("training", policy(status={**IDLE, "phase": "Training", "lastTrainingJob": "j"}), isvc(),
     ("True", "Training"), None),
    ("cooling-down", policy(status={**IDLE, "lastTrigger": {"time": ago(minutes=10)}}),
     drifted(), ("True", "Idle"), None),
    ("service-missing", policy(status=IDLE), None, ("False", "InferenceServiceNotFound"), None),
    ("service-serves-nothing", policy(status=IDLE), isvc(current=None),
     ("False", "NoServingVersion"), None),
    ("invalid-schedule", policy({"schedule": "every tuesday"}, IDLE), isvc(),
     ("False", "InvalidSchedule"), ("True", "InvalidSchedule")),
    ("dataset-unavailable", policy(status={**IDLE, "conditions": [
        _dataset_checked("DatasetUnavailable")]}), isvc(),
     ("False", "DatasetUnavailable"), ("True", "DatasetUnavailable")),
    ("probe-failed", policy(status={**IDLE, "conditions": [_dataset_checked("ProbeFailed")]}),
     isvc(), ("False", "ProbeFailed"), ("True", "ProbeFailed")),
    ("probe-bad-spec", policy(status={**IDLE, "conditions": [_dataset_checked("InvalidSpec")]}),
     isvc(), ("False", "InvalidSpec"), ("True", "InvalidSpec")),
    ("dataset-unchanged", policy(status={**IDLE, "conditions": [
        _dataset_checked("DatasetUnchanged", ok="True")]}), isvc(), ("True", "Idle"), None),
    ("stalled-cleared-once-fixed", policy(status={**IDLE, "conditions": [
        {**_dataset_checked("ProbeFailed"), "type": "Stalled", "status": "True"}]}), isvc(),
     ("True", "Idle"), None),
]  # fmt: skip


@pytest.mark.parametrize(
    ("pol", "service", "ready", "stalled"),
    [c[1:] for c in HEALTH_CASES],
    ids=[c[0] for c in HEALTH_CASES],
)
def test_ready_and_stalled(pol, service, ready, stalled):
    conds = retrainpolicy_plan(pol, Observed(service, None), now=NOW).status["conditions"]
    got = {c["type"]: (c["status"], c["reason"]) for c in conds}
    assert (got.get("Ready"), got.get("Stalled")) == (ready, stalled)
    assert get_condition(conds, "Ready")["observedGeneration"] == 1
