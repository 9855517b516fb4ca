"""The newData trigger: when a probe starts, what a finished probe records, when the dataset
counts as new, and how that meets the other triggers, the cooldown, suspend and a running
TrainingJob."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from perennial_operator.decide.conditions import get_condition
from perennial_operator.decide.retrainpolicy.newdata import ProbeObs, probe_result
from perennial_operator.decide.retrainpolicy.plan import Observed, retrainpolicy_plan
from perennial_operator.decide.trainingjob.observed import ContainerObs, JobObs, PodObs

pytestmark = pytest.mark.unit

NOW = dt.datetime(2026, 11, 27, 14, 0, tzinfo=dt.UTC)
STAMP = "2026-11-27T14:00:00Z"
OLD, NEW = "3f2a" + "0" * 60, "9bc1" + "1" * 60
PROBE = "churn-newdata-20261127135900"
NEXT_PROBE = "churn-newdata-20261127140000"


def ago(**delta):
    return (NOW - dt.timedelta(**delta)).strftime("%Y-%m-%dT%H:%M:%SZ")


def policy(status=None, triggers=None, **spec):
    return {
        "metadata": {"name": "churn", "namespace": "ns", "uid": "u1", "generation": 1},
        "spec": {
            "inferenceService": "churn",
            "template": {"model": "churn", "task": "classification"},
            "triggers": triggers or {"newData": {"pollSeconds": 300}},
            "cooldownSeconds": 3600,
            **spec,
        },
        "status": {"phase": "Idle", "observedGeneration": 1, **(status or {})},
    }


def isvc(**status):
    return {
        "metadata": {"name": "churn"},
        "spec": {"model": {"stage": "Production"}},
        "status": {"currentModelVersion": "churn-v1", **status},
    }


def serving(sha=OLD):
    dataset = {"uri": "pvc://data/x.csv", "sha256": sha, "rows": 100} if sha is not None else {}
    return {"metadata": {"name": "churn-v1"}, "spec": {"source": {"dataset": dataset}}}


def message(sha=NEW, rows=120):
    dataset = {"uri": "pvc://data/x.csv", "sha256": sha, "rows": rows}
    return json.dumps({"outcome": "Fingerprinted", "dataset": dataset})


def probe(exit_code=0, text=None, *, complete=None, failure=None, running=False, name=PROBE):
    if running:
        return ProbeObs(name, JobObs(name, 1, 0, 0, False, None, ago(seconds=30), None))
    complete = exit_code == 0 if complete is None else complete
    if failure is None and not complete:
        failure = ("BackoffLimitExceeded", "Job has reached the specified backoff limit")
    job = JobObs(
        name,
        0,
        int(complete),
        int(not complete),
        complete,
        failure,
        ago(seconds=30),
        STAMP if complete else None,
    )
    ctr = ContainerObs(
        "fingerprint",
        "terminated",
        exit_code,
        "Completed" if complete else "Error",
        message() if text is None else text,
    )
    pod = PodObs(
        f"{name}-abc", "Succeeded" if complete else "Failed", ago(seconds=30), None, (), (ctr,)
    )
    return ProbeObs(name, job, (pod,))


IN_FLIGHT = {"newData": {"probeJob": PROBE, "checkedTime": ago(minutes=10)}}


def plan_for(status=None, probe_obs=None, svc=None, served=None, triggers=None, **spec):
    svc = isvc() if svc is None else svc
    pol = policy(status, triggers, **spec)
    return retrainpolicy_plan(
        pol,
        Observed(svc or None, None, served if served is not None else serving(), probe_obs),
        now=NOW,
    )


def triggered(plan):
    return get_condition(plan.status.get("conditions") or [], "Triggered") or {}


def checked(plan):
    return get_condition(plan.status.get("conditions") or [], "DatasetChecked") or {}


# ----- a finished probe: what it records and whether the trigger fires ---------------------


def test_a_different_sha256_fires_newdata_and_remembers_the_data():
    plan = plan_for(IN_FLIGHT, probe())
    assert plan.start is not None and plan.start.reason == "NewData"
    assert plan.start.baseline == "churn-v1"
    assert plan.status["lastTrigger"]["detail"] == "dataset sha256 3f2a0000…→9bc11111… (120 rows)"
    assert triggered(plan)["reason"] == "NewData" and triggered(plan)["status"] == "True"
    record = plan.status["newData"]
    assert record["probeJob"] is None  # no longer in flight: the patch deletes it
    assert (record["sha256"], record["rows"], record["uri"]) == (NEW, 120, "pvc://data/x.csv")
    assert record["checkedTime"] == STAMP and record["triggeredSha256"] == NEW
    assert (checked(plan)["status"], checked(plan)["reason"]) == ("True", "DatasetChanged")
    assert PROBE in checked(plan)["message"] and "since churn-v1" in checked(plan)["message"]
    assert [e.reason for e in plan.events] == ["Triggered", "TrainingStarted"]
    assert plan.probe is None  # training starts; no new probe


def test_the_same_sha256_records_the_check_and_nothing_else():
    plan = plan_for(IN_FLIGHT, probe(text=message(sha=OLD)))
    assert plan.start is None and plan.events == [] and plan.probe is None
    assert plan.status["newData"] == {
        "probeJob": None,
        "checkedTime": STAMP,
        "sha256": OLD,
        "rows": 120,
        "uri": "pvc://data/x.csv",
    }
    assert (checked(plan)["status"], checked(plan)["reason"]) == ("True", "DatasetUnchanged")
    assert triggered(plan)["reason"] == "WaitingForTrigger"


def test_data_that_already_started_a_retraining_does_not_start_another():
    status = {"newData": {**IN_FLIGHT["newData"], "triggeredSha256": NEW}}
    plan = plan_for(status, probe())
    assert plan.start is None
    assert plan.status["newData"]["triggeredSha256"] == NEW
    assert checked(plan)["reason"] == "DatasetChanged"
    assert "started already" in checked(plan)["message"]


def test_a_serving_model_without_a_dataset_sha256_counts_as_old_data():
    plan = plan_for(IN_FLIGHT, probe(), served=serving(sha=None))
    assert plan.start is not None and plan.start.reason == "NewData"
    assert plan.status["lastTrigger"]["detail"].startswith("dataset sha256 unknown→9bc11111…")
    assert "records no dataset sha256" in checked(plan)["message"]


def test_a_missing_serving_modelversion_never_fires():
    pol = policy(IN_FLIGHT)
    plan = retrainpolicy_plan(pol, Observed(isvc(), None, None, probe()), now=NOW)
    assert plan.start is None
    assert checked(plan)["reason"] == "NoServingVersion"


@pytest.mark.parametrize(
    ("obs", "reason", "says"),
    [
        (probe(4, json.dumps({"outcome": "DatasetUnavailable",
                              "message": "pvc://data/x.csv: no such file /mnt/pvc/data/x.csv"})),
         "DatasetUnavailable", "exit code 4: pvc://data/x.csv: no such file"),
        (probe(2, json.dumps({"outcome": "BadSpec", "message": "spec.task"})), "InvalidSpec",
         "exit code 2: spec.task"),
        (probe(1, "Traceback..."), "ProbeFailed", "exit code 1: Traceback..."),
        (ProbeObs(PROBE, JobObs(PROBE, 0, 0, 0, False, ("DeadlineExceeded", "Job was active "
                  "longer than specified deadline"), ago(hours=1), None), ()),
         "ProbeFailed", "DeadlineExceeded: Job was active longer"),
        (probe(0, "not json"), "ProbeFailed", "no readable result: 'not json'"),
        (probe(0, message(sha="abc")), "ProbeFailed", "no readable result"),
    ],
    ids=["dataset-unavailable", "bad-spec", "crash", "deadline", "garbage", "short-sha"],
)  # fmt: skip
def test_a_failed_probe_warns_records_no_data_and_never_fires(obs, reason, says):
    status = {"newData": {**IN_FLIGHT["newData"], "sha256": NEW, "rows": 1, "uri": "u"}}
    plan = plan_for(status, obs)
    assert plan.start is None and plan.probe is None
    cond = checked(plan)
    assert (cond["status"], cond["reason"]) == ("False", reason)
    assert says in cond["message"] and PROBE in cond["message"]
    assert "trying again in 300s" in cond["message"]
    (event,) = plan.events
    assert (event.type, event.reason, event.message) == (
        "Warning",
        "NewDataProbeFailed",
        cond["message"],
    )
    # What an older probe found is dropped with it: the record says what this one found.
    assert plan.status["newData"] == {
        "probeJob": None,
        "checkedTime": STAMP,
        "sha256": None,
        "rows": None,
        "uri": None,
    }
    assert triggered(plan)["reason"] == "WaitingForTrigger"


def test_a_running_probe_is_left_alone():
    plan = plan_for(IN_FLIGHT, probe(running=True))
    assert plan.start is None and plan.probe is None and plan.events == []
    assert plan.status["newData"] == IN_FLIGHT["newData"]
    assert checked(plan) == {}


def test_a_probe_job_that_is_gone_is_forgotten_and_the_next_one_starts():
    plan = plan_for(IN_FLIGHT, ProbeObs(PROBE, None))
    assert plan.probe == NEXT_PROBE
    assert plan.status["newData"]["probeJob"] == NEXT_PROBE
    assert checked(plan) == {}


# ----- when a probe starts -----------------------------------------------------------------

START_CASES = [
    ("never-checked", {}, {}, NEXT_PROBE),
    ("poll-due", {"newData": {"checkedTime": ago(seconds=300), "sha256": OLD}}, {}, NEXT_PROBE),
    ("poll-not-due", {"newData": {"checkedTime": ago(seconds=299), "sha256": OLD}}, {}, None),
    (
        "short-poll",
        {"newData": {"checkedTime": ago(seconds=10)}},
        {"triggers": {"newData": {"pollSeconds": 10}}},
        NEXT_PROBE,
    ),
    ("one-in-flight", IN_FLIGHT, {}, None),
    ("no-newdata-trigger", {}, {"triggers": {"drift": {"psi": 0.2}}}, None),
    ("cooldown", {"lastTrigger": {"time": ago(minutes=10)}}, {}, None),
    ("suspended", {}, {"suspend": True}, None),
    ("training", {"phase": "Training", "lastTrainingJob": "churn-1"}, {}, None),
    ("no-serving-version", {}, {"svc": {"metadata": {"name": "churn"}, "status": {}}}, None),
]


@pytest.mark.parametrize(
    ("status", "extra", "starts"), [c[1:] for c in START_CASES], ids=[c[0] for c in START_CASES]
)
def test_when_a_probe_starts(status, extra, starts):
    probe_obs = probe(running=True) if status is IN_FLIGHT else None
    plan = plan_for(status, probe_obs, **extra)
    assert plan.probe == starts
    if starts:
        assert plan.status["newData"]["probeJob"] == starts
        assert plan.status["newData"].get("sha256") == status.get("newData", {}).get("sha256")
    if status.get("phase") != "Training":  # (training re-creates its missing job here)
        assert plan.start is None


def test_the_recorded_probe_is_what_fires_not_the_check_itself():
    """A difference recorded earlier still fires once nothing holds it back any more."""
    status = {
        "newData": {"checkedTime": ago(seconds=30), "sha256": NEW, "rows": 7},
        "lastTrigger": {"time": ago(hours=2)},
    }
    plan = plan_for(status)
    assert plan.start is not None and plan.start.reason == "NewData"
    assert plan.status["newData"]["triggeredSha256"] == NEW
    assert plan.probe is None


# ----- with the other triggers and rules ---------------------------------------------------


def test_cooldown_holds_a_new_dataset_and_starts_no_probe():
    status = {**IN_FLIGHT, "lastTrigger": {"time": ago(minutes=10)}}
    plan = plan_for(status, probe())
    assert plan.start is None and plan.probe is None
    assert triggered(plan)["reason"] == "CoolingDown"
    assert plan.status["newData"]["sha256"] == NEW  # recorded, fires when the cooldown ends
    assert "triggeredSha256" not in plan.status["newData"]


def test_suspend_holds_a_new_dataset():
    plan = plan_for(IN_FLIGHT, probe(), suspend=True)
    assert plan.start is None and triggered(plan)["reason"] == "Suspended"
    assert plan.status["phase"] == "Suspended"


def test_a_probe_that_finishes_during_training_is_recorded_and_fires_nothing():
    status = {
        **IN_FLIGHT,
        "phase": "Training",
        "lastTrainingJob": "churn-1",
        "lastTrigger": {"reason": "Drift", "time": ago(minutes=1)},
    }
    plan = retrainpolicy_plan(
        policy(status),
        Observed(
            isvc(),
            {"metadata": {"name": "churn-1"}, "status": {"phase": "Training"}},
            serving(),
            probe(),
        ),
        now=NOW,
    )
    assert plan.start is None and plan.probe is None
    assert plan.status["phase"] == "Training"
    assert plan.status["newData"]["sha256"] == NEW
    assert checked(plan)["reason"] == "DatasetChanged"


def test_drift_goes_before_new_data():
    triggers = {"newData": {}, "drift": {"psi": 0.2, "minSamples": 10}}
    plan = plan_for(
        IN_FLIGHT, probe(), svc=isvc(drift={"psi": 0.5, "samples": 50}), triggers=triggers
    )
    assert plan.start.reason == "Drift"
    assert "triggeredSha256" not in plan.status["newData"]  # the new data may still fire later


def test_new_data_goes_before_the_schedule():
    status = {**IN_FLIGHT, "nextScheduledTime": ago(minutes=1)}
    plan = plan_for(status, probe(), triggers={"newData": {}, "schedule": "0 * * * *"})
    assert plan.start.reason == "NewData"
    assert plan.status["nextScheduledTime"] == "2026-11-27T15:00:00Z"  # the fire is skipped


def test_probe_result_prefers_the_newest_pod():
    old = probe(text=message(sha=OLD)).pods[0]
    new = probe().pods[0]
    newer = PodObs("p2", new.phase, ago(seconds=1), None, (), new.main)
    found = probe_result(ProbeObs(PROBE, probe().job, (old, newer)))
    assert found is not None and found.sha256 == NEW
