"""The TrainingJob status machine, as a table of observed worlds -> phase and conditions."""

from __future__ import annotations

import json

import pytest

from perennial_operator.decide.trainingjob.observed import (
    ContainerObs,
    JobObs,
    PodObs,
    job_obs,
    pod_obs,
)
from perennial_operator.decide.trainingjob.status import Context, trainingjob_status

pytestmark = pytest.mark.unit

NOW = "2026-11-27T12:00:00Z"
CTX = Context(now=NOW, artifact_uri="pvc://artifacts/models/churn/x")
TJ = {
    "metadata": {"name": "t", "namespace": "ml", "uid": "u", "generation": 1},
    "spec": {"model": "churn", "task": "classification", "dataset": {"uri": "builtin://iris"}},
}
SUCCESS = json.dumps(
    {
        "outcome": "Succeeded",
        "metrics": {"accuracy": 0.97, "roc_auc": 0.995},
        "dataset": {"uri": "builtin://iris", "sha256": "ab" * 32, "rows": 150},
        "artifact": {"format": "onnx", "sha256": "cd" * 32},
        "algorithm": "random_forest",
        "hyperparameters": {"n_estimators": 100},
    }
)
DATA_INVALID = json.dumps(
    {
        "outcome": "DataInvalid",
        "message": "2 data checks failed",
        "failures": [
            {"check": "min_rows", "column": None, "observed": 50, "expected": ">= 100"},
            {
                "check": "max_missing_fraction",
                "column": "age",
                "observed": 0.3,
                "expected": "<= 0.05",
            },
        ],
    }
)


def term(name, code, message=""):
    return ContainerObs(name=name, state="terminated", exit_code=code, message=message)


def run(name):
    return ContainerObs(name=name, state="running")


def wait(name):
    return ContainerObs(name=name, state="waiting", reason="PodInitializing")


def pod(
    init=(), main=(), phase="Running", created="2026-11-27T11:00:00Z", unschedulable=None, name="p1"
):
    return PodObs(
        name=name,
        phase=phase,
        created=created,
        unschedulable=unschedulable,
        init=tuple(init),
        main=tuple(main),
    )


def job(active=0, succeeded=0, failed=0, complete=False, failure=None):
    return JobObs(
        name="t-train",
        active=active,
        succeeded=succeeded,
        failed=failed,
        complete=complete,
        failure=failure,
        start_time="2026-11-27T11:00:00Z",
        completion_time="2026-11-27T11:05:00Z" if complete else None,
    )


def conds(status):
    return {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}


CASES = [
    # id, job, pods, ctx, phase, expected conditions (subset)
    ("no-job-yet", None, [], CTX, "Pending", {}),
    (
        "pool-missing",
        None,
        [],
        Context(now=NOW, artifact_uri="x", pool_problem="no pool gpu"),
        "Pending",
        {"Scheduled": ("False", "ComputePoolNotFound")},
    ),
    ("job-without-pod", job(active=1), [], CTX, "Pending", {}),
    (
        "pod-unschedulable",
        job(active=1),
        [pod(phase="Pending", unschedulable="0/2 nodes: Insufficient nvidia.com/gpu")],
        CTX,
        "Pending",
        {"Scheduled": ("False", "Unschedulable")},
    ),
    ("pod-created-no-status", job(active=1), [pod(phase="Pending")], CTX, "Pending", {}),
    (
        "validating",
        job(active=1),
        [pod(init=[run("validate")], main=[wait("train")])],
        CTX,
        "Validating",
        {"DataValidated": ("Unknown", "Validating")},
    ),
    (
        "training",
        job(active=1),
        [pod(init=[term("validate", 0)], main=[run("train")])],
        CTX,
        "Training",
        {"DataValidated": ("True", "DataChecksPassed")},
    ),
    (
        "retrying-after-crash",
        job(active=1, failed=1),
        [
            pod(init=[term("validate", 0)], main=[term("train", 1, "boom")], phase="Failed"),
            pod(
                init=[term("validate", 0)],
                main=[run("train")],
                name="p2",
                created="2026-11-27T11:10:00Z",
            ),
        ],
        CTX,
        "Training",
        {},
    ),
    (
        "succeeded-not-registered",
        job(succeeded=1, complete=True),
        [pod(init=[term("validate", 0)], main=[term("train", 0, SUCCESS)], phase="Succeeded")],
        CTX,
        "Succeeded",
        {"Complete": ("True", "TrainingSucceeded"), "Registered": ("False", "NotYet")},
    ),
    (
        "succeeded-registered",
        job(succeeded=1, complete=True),
        [pod(init=[term("validate", 0)], main=[term("train", 0, SUCCESS)], phase="Succeeded")],
        Context(now=NOW, artifact_uri="pvc://a/b", registered="churn-v4"),
        "Succeeded",
        {"Registered": ("True", "ModelRegistered")},
    ),
    (
        "succeeded-without-result",
        job(succeeded=1, complete=True),
        [pod(init=[term("validate", 0)], main=[term("train", 0, "not json")], phase="Succeeded")],
        CTX,
        "Failed",
        {"Failed": ("True", "ResultUnreadable")},
    ),
    (
        "data-invalid",
        job(failed=1, failure=("PodFailurePolicy", "Container validate ...")),
        [pod(init=[term("validate", 3, DATA_INVALID)], phase="Failed")],
        CTX,
        "Failed",
        {
            "DataValidated": ("False", "DataValidationFailed"),
            "Failed": ("True", "DataValidationFailed"),
        },
    ),
    (
        "bad-spec-in-train",
        job(failed=1, failure=("PodFailurePolicy", "")),
        [
            pod(
                init=[term("validate", 0)],
                main=[term("train", 2, '{"message": "unknown algorithm"}')],
                phase="Failed",
            )
        ],
        CTX,
        "Failed",
        {"Failed": ("True", "InvalidSpec")},
    ),
    (
        "budget-too-small",
        job(failed=1, failure=("PodFailurePolicy", "")),
        [pod(init=[term("validate", 0)], main=[term("train", 5, "")], phase="Failed")],
        CTX,
        "Failed",
        {"Failed": ("True", "BudgetTooSmall")},
    ),
    (
        "backoff-exceeded",
        job(failed=3, failure=("BackoffLimitExceeded", "Job has reached limit")),
        [pod(init=[term("validate", 0)], main=[term("train", 137, "")], phase="Failed")],
        CTX,
        "Failed",
        {"Failed": ("True", "BackoffLimitExceeded")},
    ),
    (
        "deadline",
        job(failed=0, failure=("DeadlineExceeded", "Job was active longer")),
        [],
        CTX,
        "Failed",
        {"Failed": ("True", "DeadlineExceeded")},
    ),
]


@pytest.mark.parametrize(
    ("job_", "pods", "ctx", "phase", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_phase_and_conditions(job_, pods, ctx, phase, expected):
    decision = trainingjob_status(TJ, job_, pods, ctx)
    assert decision.phase == phase
    got = conds(decision.status)
    for type_, value in expected.items():
        assert got[type_] == value, type_
    assert decision.status["observedGeneration"] == 1


# kstatus: Ready (status, reason) and Stalled (None: absent) for every case of the table
HEALTH = {
    "no-job-yet": (("False", "Pending"), None),
    "pool-missing": (("False", "ComputePoolNotFound"), None),
    "job-without-pod": (("False", "Pending"), None),
    "pod-unschedulable": (("False", "Unschedulable"), None),
    "pod-created-no-status": (("False", "Pending"), None),
    "validating": (("False", "Validating"), None),
    "training": (("False", "Training"), None),
    "retrying-after-crash": (("False", "Training"), None),
    "succeeded-not-registered": (("False", "NotYet"), None),
    "succeeded-registered": (("True", "ModelRegistered"), None),
    "succeeded-without-result": (("False", "ResultUnreadable"), ("True", "ResultUnreadable")),
    "data-invalid": (("False", "DataValidationFailed"), ("True", "DataValidationFailed")),
    "bad-spec-in-train": (("False", "InvalidSpec"), ("True", "InvalidSpec")),
    "budget-too-small": (("False", "BudgetTooSmall"), ("True", "BudgetTooSmall")),
    "backoff-exceeded": (("False", "BackoffLimitExceeded"), ("True", "BackoffLimitExceeded")),
    "deadline": (("False", "DeadlineExceeded"), ("True", "DeadlineExceeded")),
}


@pytest.mark.parametrize(
    ("job_", "pods", "ctx", "health"),
    [(c[1], c[2], c[3], HEALTH[c[0]]) for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_ready_and_stalled(job_, pods, ctx, health):
    status = trainingjob_status(TJ, job_, pods, ctx).status
    got = conds(status)
    assert (got.get("Ready"), got.get("Stalled")) == health
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert ready["observedGeneration"] == 1 and ready["message"]


def test_a_failed_job_says_how_to_train_again():
    decision = trainingjob_status(
        TJ, job(failed=3, failure=("BackoffLimitExceeded", "limit")), [], CTX
    )
    stalled = next(c for c in decision.status["conditions"] if c["type"] == "Stalled")
    assert stalled["message"].endswith("create a new TrainingJob to train again")


def test_a_job_finished_before_ready_existed_gets_it_and_nothing_else_moves():
    old = {
        "phase": "Succeeded",
        "message": "trained and registered as churn-v2",
        "modelVersion": "churn-v2",
        "conditions": [{"type": "Complete", "status": "True", "reason": "TrainingSucceeded",
                        "message": "", "lastTransitionTime": NOW, "observedGeneration": 1}],
    }  # fmt: skip
    decision = trainingjob_status({**TJ, "status": old}, None, [], CTX)
    assert decision.events == [] and decision.phase == "Succeeded"
    assert conds(decision.status)["Ready"] == ("True", "ModelRegistered")
    assert {k: v for k, v in decision.status.items() if k != "conditions"} == {
        **{k: v for k, v in old.items() if k != "conditions"}, "observedGeneration": 1}  # fmt: skip
    again = trainingjob_status({**TJ, "status": decision.status}, None, [], CTX)
    assert again.status == decision.status


def test_data_failure_message_names_each_check_column_and_value():
    decision = trainingjob_status(
        TJ,
        job(failed=1, failure=("PodFailurePolicy", "")),
        [pod(init=[term("validate", 3, DATA_INVALID)], phase="Failed")],
        CTX,
    )
    message = decision.status["message"]
    assert "not retried" in message
    assert "min_rows: observed 50, expected >= 100" in message
    assert "max_missing_fraction on column age: observed 0.3, expected <= 0.05" in message
    assert decision.events[0].type == "Warning"


def test_success_records_metrics_dataset_artifact_and_primary_metric():
    decision = trainingjob_status(
        TJ,
        job(succeeded=1, complete=True),
        [pod(init=[term("validate", 0)], main=[term("train", 0, SUCCESS)], phase="Succeeded")],
        Context(now=NOW, artifact_uri="pvc://a/b", registered="churn-v1"),
    )
    status = decision.status
    assert status["metrics"]["accuracy"] == 0.97
    assert status["dataset"] == {"uri": "builtin://iris", "sha256": "ab" * 32, "rows": 150}
    assert status["artifact"] == {"uri": "pvc://a/b", "sha256": "cd" * 32, "format": "onnx"}
    assert status["primaryMetric"] == "roc_auc=0.995"
    assert status["modelVersion"] == "churn-v1"
    assert decision.result is not None and decision.result["algorithm"] == "random_forest"


def test_a_succeeded_pod_keeps_training_until_the_job_completes():
    decision = trainingjob_status(
        TJ,
        job(active=1),
        [pod(init=[term("validate", 0)], main=[term("train", 0, SUCCESS)], phase="Succeeded")],
        CTX,
    )
    assert decision.phase == "Training"


def test_a_crashed_pod_waiting_for_retry_says_why():
    decision = trainingjob_status(
        TJ, job(active=0, failed=1), [pod(main=[term("train", 137, "")], phase="Failed")], CTX
    )
    assert decision.phase == "Pending"
    assert "container train exited 137" in decision.status["message"]


def test_attempts_count_every_pod_the_job_started():
    decision = trainingjob_status(TJ, job(active=1, failed=2), [], CTX)
    assert decision.status["attempts"] == 3
    assert "after 2 failed" in decision.status["message"]


def test_terminal_phases_are_sticky():
    done = {**TJ, "status": {"phase": "Failed", "message": "x", "conditions": []}}
    decision = trainingjob_status(done, job(active=1), [pod(init=[run("validate")])], CTX)
    assert decision.phase == "Failed" and decision.events == []


def test_transition_time_moves_only_when_status_flips():
    first = trainingjob_status(
        TJ, job(active=1), [pod(init=[term("validate", 0)], main=[run("train")])], CTX
    )
    later = Context(now="2026-11-27T13:00:00Z", artifact_uri=CTX.artifact_uri)
    again = trainingjob_status(
        {**TJ, "status": first.status},
        job(active=1),
        [pod(init=[term("validate", 0)], main=[run("train")])],
        later,
    )
    (cond,) = [c for c in again.status["conditions"] if c["type"] == "DataValidated"]
    assert cond["lastTransitionTime"] == NOW
    assert again.events == []  # same phase: no new Event


def test_phase_change_emits_one_event():
    decision = trainingjob_status(
        TJ, job(active=1), [pod(init=[run("validate")], main=[wait("train")])], CTX
    )
    assert [(e.type, e.reason) for e in decision.events] == [("Normal", "Validating")]


def test_parsers_read_kubelet_shaped_dicts():
    raw_pod = {
        "metadata": {"name": "p", "creationTimestamp": "2026-11-27T11:00:00Z"},
        "status": {
            "phase": "Failed",
            "conditions": [{"type": "PodScheduled", "status": "True"}],
            "initContainerStatuses": [
                {
                    "name": "validate",
                    "state": {
                        "terminated": {"exitCode": 3, "reason": "Error", "message": DATA_INVALID}
                    },
                }
            ],
            "containerStatuses": [
                {"name": "train", "state": {"waiting": {"reason": "PodInitializing"}}}
            ],
        },
    }
    parsed = pod_obs(raw_pod)
    assert parsed.unschedulable is None
    assert parsed.container("validate") == term("validate", 3, DATA_INVALID).__class__(
        name="validate", state="terminated", exit_code=3, reason="Error", message=DATA_INVALID
    )
    assert parsed.container("train").state == "waiting"
    raw_job = {
        "metadata": {"name": "j"},
        "status": {
            "failed": 1,
            "conditions": [
                {"type": "FailureTarget", "status": "True", "reason": "PodFailurePolicy"},
                {"type": "Failed", "status": "True", "reason": "PodFailurePolicy", "message": "m"},
            ],
        },
    }
    assert job_obs(raw_job).failure == ("PodFailurePolicy", "m")


def test_result_without_a_valid_artifact_digest_is_not_registered():
    bad = json.loads(SUCCESS)
    bad["artifact"]["sha256"] = ""
    decision = trainingjob_status(
        TJ,
        job(succeeded=1, complete=True),
        [
            pod(
                init=[term("validate", 0)],
                main=[term("train", 0, json.dumps(bad))],
                phase="Succeeded",
            )
        ],
        CTX,
    )
    assert decision.phase == "Failed" and decision.result is None
    assert conds(decision.status)["Failed"] == ("True", "ResultUnreadable")


def test_only_numeric_metrics_reach_the_status():
    noisy = json.loads(SUCCESS)
    noisy["metrics"].update(note="n/a", ok=True, nan=float("nan"))
    decision = trainingjob_status(
        TJ,
        job(succeeded=1, complete=True),
        [
            pod(
                init=[term("validate", 0)],
                main=[term("train", 0, json.dumps(noisy))],
                phase="Succeeded",
            )
        ],
        CTX,
    )
    assert decision.status["metrics"] == {"accuracy": 0.97, "roc_auc": 0.995}


def test_a_named_algorithm_shows_before_training_ends():
    tj = {**TJ, "spec": {**TJ["spec"], "algorithm": "svm"}}
    assert trainingjob_status(tj, job(active=1), [], CTX).status["algorithm"] == "svm"
    assert "algorithm" not in trainingjob_status(TJ, job(active=1), [], CTX).status
