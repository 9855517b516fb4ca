"""The TrainingJob a RetrainPolicy starts, pure: the template plus the serving baseline."""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Mapping
from typing import Any

from perennial_operator.api.group import API_VERSION, GROUP, child_labels
from perennial_operator.desired.common import child_name, owner_reference

KIND = "RetrainPolicy"
LABEL_RETRAINPOLICY = f"{GROUP}/retrainpolicy"
# One value per trigger: a restarted operator finds the job of a recorded trigger by it.
LABEL_TRIGGER = f"{GROUP}/retrain-trigger"


def trigger_id(when: dt.datetime) -> str:
    """The trigger's time as digits: usable in a name and a label value, sortable."""
    return when.astimezone(dt.UTC).strftime("%Y%m%d%H%M%S")


def trainingjob_name(policy_name: str, trigger: str) -> str:
    return child_name(policy_name, trigger)


def trainingjob_for(
    policy: Mapping[str, Any], trigger: str, baseline: str, reason: str
) -> dict[str, Any]:
    """A TrainingJob with the template's spec and spec.baseline set to the serving version,
    so the trainer scores the baseline on the candidate's own test split."""
    meta = policy["metadata"]
    spec = copy.deepcopy(dict(policy["spec"]["template"]))
    spec["baseline"] = {"modelVersion": baseline}
    labels = {**child_labels(KIND, meta["name"]), LABEL_TRIGGER: trigger}
    return {
        "apiVersion": API_VERSION,
        "kind": "TrainingJob",
        "metadata": {
            "name": trainingjob_name(meta["name"], trigger),
            "namespace": meta["namespace"],
            "labels": labels,
            "annotations": {f"{GROUP}/retrain-reason": reason},
            "ownerReferences": [owner_reference(dict(policy))],
        },
        "spec": spec,
    }


def trigger_selector(policy_name: str, trigger: str) -> str:
    return f"{LABEL_RETRAINPOLICY}={policy_name},{LABEL_TRIGGER}={trigger}"
