from __future__ import annotations

import datetime as dt

import pytest

from perennial_operator.api.names import retrain_trainingjob_name as trainingjob_name
from perennial_operator.api.names import trigger_id
from perennial_operator.desired.retrainpolicy import trainingjob_for, trigger_selector

pytestmark = pytest.mark.unit

POLICY = {
    "apiVersion": "perennial.dev/v1alpha1",
    "kind": "RetrainPolicy",
    "metadata": {"name": "churn", "namespace": "ns", "uid": "u1"},
    "spec": {
        "inferenceService": "churn",
        "template": {
            "model": "churn",
            "task": "classification",
            "baseline": {"modelVersion": "stale"},
            "hyperparameters": {"a": 1},
        },
    },
}


def test_trainingjob_carries_the_template_the_baseline_labels_and_owner():
    tj = trainingjob_for(POLICY, "20261127140000", "churn-v3", "Drift")
    assert tj["kind"] == "TrainingJob"
    assert tj["metadata"]["name"] == "churn-20261127140000"
    assert tj["metadata"]["namespace"] == "ns"
    assert tj["metadata"]["labels"] == {
        "app.kubernetes.io/managed-by": "perennial",
        "perennial.dev/retrainpolicy": "churn",
        "perennial.dev/retrain-trigger": "20261127140000",
    }
    assert tj["metadata"]["annotations"] == {"perennial.dev/retrain-reason": "Drift"}
    # History, not a child: deleting the policy must not garbage-collect its jobs.
    assert "ownerReferences" not in tj["metadata"]
    assert tj["spec"]["baseline"] == {"modelVersion": "churn-v3"}
    assert tj["spec"]["hyperparameters"] == {"a": 1}
    # The policy's own template is never mutated.
    assert POLICY["spec"]["template"]["baseline"] == {"modelVersion": "stale"}


@pytest.mark.parametrize(
    ("policy_name", "expected_len"),
    [("churn", 20), ("x" * 60, 63)],
    ids=["short", "long-gets-hashed"],
)
def test_trainingjob_name_is_deterministic_and_fits(policy_name, expected_len):
    name = trainingjob_name(policy_name, "20261127140000")
    assert name == trainingjob_name(policy_name, "20261127140000")
    assert len(name) == expected_len and name.endswith("-20261127140000")


def test_trigger_id_and_selector():
    when = dt.datetime(2026, 11, 27, 15, 0, 1, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    assert trigger_id(when) == "20261127140001"
    assert trigger_selector("churn", "1") == (
        "perennial.dev/retrainpolicy=churn,perennial.dev/retrain-trigger=1"
    )
