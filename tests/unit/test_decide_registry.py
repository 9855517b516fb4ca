from __future__ import annotations

import pytest

from perennial_operator.api.names import modelversion_name
from perennial_operator.decide.modelversion.metrics import primary_metric
from perennial_operator.decide.modelversion.registry import (
    modelversion_problem,
    next_version,
    versions_to_archive,
)
from perennial_operator.decide.modelversion.status import modelversion_status
from perennial_operator.decide.trainingjob.termination import failure_report
from perennial_operator.desired.modelversion import modelversion_for

pytestmark = pytest.mark.unit


def mv(name, model, stage, version=1):
    return {
        "metadata": {"name": name},
        "spec": {"model": model, "stage": stage, "version": version},
    }


@pytest.mark.parametrize(
    ("existing", "expected"),
    [([], 1), ([1, 2, 3], 4), ([7, 2], 8)],
    ids=["first", "dense", "gaps-not-reused"],
)
def test_next_version(existing, expected):
    assert next_version(existing) == expected


def test_only_other_production_versions_of_the_same_model_are_archived():
    promoted = mv("churn-v3", "churn", "Production", 3)
    siblings = [
        promoted,
        mv("churn-v2", "churn", "Production", 2),
        mv("churn-v1", "churn", "Archived"),
        mv("fraud-v1", "fraud", "Production"),
        mv("churn-v4", "churn", "Staging", 4),
    ]
    assert versions_to_archive(promoted, siblings) == ["churn-v2"]


@pytest.mark.parametrize(
    ("artifact", "problem"),
    [
        ({"uri": "pvc://a/b", "format": "onnx"}, None),
        ({"uri": "ftp://a/b", "format": "onnx"}, "unsupported scheme"),
        ({"uri": "pvc://a/b", "format": "joblib"}, "allowUnsafePickle"),
        ({"uri": "pvc://a/b", "format": "joblib", "allowUnsafePickle": True}, None),
    ],
    ids=["ok", "bad-scheme", "pickle-not-allowed", "pickle-allowed"],
)
def test_modelversion_problem(artifact, problem):
    found = modelversion_problem({"spec": {"artifact": artifact}})
    assert (found is None) if problem is None else (problem in (found or ""))


def test_primary_metric_prefers_the_automl_metric_then_the_task_default():
    metrics = {"accuracy": 0.9, "roc_auc": 0.95, "f1_macro": 0.88}
    assert primary_metric("classification", metrics) == "roc_auc=0.95"
    assert primary_metric("classification", metrics, "f1_macro") == "f1_macro=0.88"
    assert primary_metric("regression", {"r2": 0.5}) == "r2=0.5"
    assert primary_metric("regression", {}) == ""


def test_failure_report_of_plain_text_and_json():
    assert failure_report("") == "no termination message"
    assert failure_report("Traceback: boom") == "Traceback: boom"
    assert failure_report('{"message": "dataset missing"}') == "dataset missing"


def test_modelversion_for_records_lineage_and_is_not_owned_by_the_job():
    tj = {
        "metadata": {"name": "churn-train", "namespace": "ml", "uid": "u1"},
        "spec": {"model": "churn", "dataset": {"uri": "builtin://breast_cancer"}},
    }
    result = {
        "artifact": {"sha256": "ab" * 32, "format": "onnx"},
        "dataset": {"uri": "builtin://breast_cancer", "sha256": "cd" * 32, "rows": 569},
        "metrics": {"roc_auc": 0.99, "note": "x"},
        "algorithm": "svm",
        "task": "",
        "hyperparameters": {"C": 1.0},
        "signature": {"inputs": ["a", "b"], "outputs": ["label"]},
    }
    manifest = modelversion_for(tj, result, "pvc://art/models/churn/x", 4, "img:1")
    assert manifest["metadata"]["name"] == modelversion_name("churn", 4) == "churn-v4"
    assert "ownerReferences" not in manifest["metadata"]
    assert manifest["metadata"]["labels"]["perennial.dev/trainingjob-uid"] == "u1"
    spec = manifest["spec"]
    assert spec["artifact"] == {
        "uri": "pvc://art/models/churn/x",
        "sha256": "ab" * 32,
        "format": "onnx",
    }
    assert spec["metrics"] == {"roc_auc": 0.99}
    assert spec["signature"]["inputs"] == [{"name": "a"}, {"name": "b"}]
    assert spec["source"] == {
        "trainingJob": "churn-train",
        "dataset": {"uri": "builtin://breast_cancer", "sha256": "cd" * 32, "rows": 569},
        "algorithm": "svm",
        "task": "",
        "hyperparameters": {"C": 1.0},
        "image": "img:1",
    }


@pytest.mark.parametrize(
    ("artifact", "phase", "reason", "stalled"),
    [
        ({"uri": "pvc://a/m", "sha256": "0" * 64}, "Ready", "ArtifactRecorded", None),
        ({"uri": "ftp://a/m", "sha256": "0" * 64}, "Failed", "InvalidReference", "True"),
        ({"uri": "s3://a/m", "format": "joblib"}, "Failed", "InvalidReference", "True"),
    ],
    ids=["ready", "bad-scheme", "pickle-not-allowed"],
)
def test_modelversion_status(artifact, phase, reason, stalled):
    model = {
        "metadata": {"name": "churn-v1", "generation": 2},
        "spec": {
            "model": "churn",
            "version": 1,
            "artifact": artifact,
            "metrics": {"accuracy": 0.9, "roc_auc": 0.95},
        },
    }
    status = modelversion_status(model, "2026-11-27T14:00:00Z")
    conds = {c["type"]: c for c in status["conditions"]}
    ready = conds["Ready"]
    assert (status["phase"], ready["reason"]) == (phase, reason)
    assert ready["status"] == ("True" if stalled is None else "False")
    assert (conds.get("Stalled") or {}).get("status") == stalled
    assert all(c["observedGeneration"] == 2 for c in conds.values())
    assert status["observedGeneration"] == 2
    assert status["primaryMetric"] == "roc_auc=0.95"


def test_a_fixed_reference_clears_stalled():
    bad = {
        "metadata": {"name": "churn-v1", "generation": 1},
        "spec": {"model": "churn", "version": 1, "artifact": {"uri": "ftp://a/m"}},
    }
    bad["status"] = modelversion_status(bad, "2026-11-27T14:00:00Z")
    fixed = {**bad, "metadata": {**bad["metadata"], "generation": 2},
             "spec": {**bad["spec"], "artifact": {"uri": "pvc://a/m"}}}  # fmt: skip
    types = {c["type"]: c["status"] for c in modelversion_status(fixed, "2026-11-27T14:01:00Z")[
        "conditions"]}  # fmt: skip
    assert types == {"Ready": "True"}
