"""A TrainingJob and its finished Job and pod as the API server shows them, for the
reconcile tests that run against FakeKube."""

from __future__ import annotations

import copy
import json
from typing import Any

from perennial_operator.api.group import API_VERSION, LABEL_TRAININGJOB_UID

NS, UID = "ml", "0f6b2c1e-0000-4000-8000-000000000001"
RESULT = {
    "outcome": "Succeeded",
    "metrics": {"accuracy": 0.96, "roc_auc": 0.991},
    "dataset": {"uri": "builtin://breast_cancer", "sha256": "ab" * 32, "rows": 569},
    "artifact": {"format": "onnx", "sha256": "cd" * 32},
    "algorithm": "random_forest",
}


def trainingjob(name: str = "churn-1", uid: str = UID, model: str = "churn") -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "TrainingJob",
        "metadata": {"name": name, "namespace": NS, "uid": uid},
        "spec": {
            "model": model,
            "task": "classification",
            "algorithm": "random_forest",
            "dataset": {"uri": "builtin://breast_cancer", "target": "target"},
        },
    }


def finished_job(name: str = "churn-1", uid: str = UID) -> list[dict[str, Any]]:
    """The Job complete and its pod's train container done, with the runtime's result."""
    done = {"terminated": {"exitCode": 0, "reason": "Completed", "message": json.dumps(RESULT)}}
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": f"{name}-train",
            "namespace": NS,
            "uid": f"job-{uid}",
            "ownerReferences": [{"uid": uid, "controller": True}],
        },
        "status": {"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]},
    }
    pod = {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": f"{name}-train-x", "namespace": NS,
                     "labels": {LABEL_TRAININGJOB_UID: uid},
                     "ownerReferences": [{"uid": f"job-{uid}", "controller": True}]},
        "status": {"phase": "Succeeded",
                   "initContainerStatuses": [{"name": "validate", "state": {
                       "terminated": {"exitCode": 0, "reason": "Completed"}}}],
                   "containerStatuses": [{"name": "train", "state": done}]},
    }  # fmt: skip
    return [job, pod]


def running_job(name: str = "churn-1", uid: str = UID) -> list[dict[str, Any]]:
    """The Job active, its pod's train container running."""
    job, pod = copy.deepcopy(finished_job(name, uid))
    job["status"] = {"active": 1, "startTime": "2026-12-05T10:00:00Z"}
    pod["status"]["phase"] = "Running"
    pod["status"]["containerStatuses"] = [{"name": "train", "state": {"running": {}}}]
    return [job, pod]
