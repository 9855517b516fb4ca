"""The TrainingJob a RetrainPolicy starts, pure: the template plus the serving baseline."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from perennial_operator.api.group import (
    ANNOTATION_RETRAIN_REASON,
    API_VERSION,
    LABEL_RETRAINPOLICY,
    LABEL_TRIGGER,
    child_labels,
)
from perennial_operator.api.names import retrain_trainingjob_name

KIND = "RetrainPolicy"


def trainingjob_for(
    policy: Mapping[str, Any], trigger: str, baseline: str, reason: str
) -> dict[str, Any]:
    """A TrainingJob with the template's spec and spec.baseline set to the serving version,
    so the trainer scores the baseline on the candidate's own test split.

    No owner reference: the jobs are the policy's history, kept when the policy is deleted
    (the labels link them; spec.historyLimit bounds them)."""
    meta = policy["metadata"]
    spec = copy.deepcopy(dict(policy["spec"]["template"]))
    spec["baseline"] = {"modelVersion": baseline}
    labels = {**child_labels(KIND, meta["name"]), LABEL_TRIGGER: trigger}
    return {
        "apiVersion": API_VERSION,
        "kind": "TrainingJob",
        "metadata": {
            "name": retrain_trainingjob_name(meta["name"], trigger),
            "namespace": meta["namespace"],
            "labels": labels,
            "annotations": {ANNOTATION_RETRAIN_REASON: reason},
        },
        "spec": spec,
    }


def trigger_selector(policy_name: str, trigger: str) -> str:
    return f"{LABEL_RETRAINPOLICY}={policy_name},{LABEL_TRIGGER}={trigger}"
