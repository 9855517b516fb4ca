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


def _mv_with_stage(stage, history=None, managed=None):
    return {
        "metadata": {"name": "churn-v1", "generation": 1, "managedFields": managed or []},
        "spec": {"model": "churn", "version": 1, "stage": stage,
                 "artifact": {"uri": "pvc://a/m"}},
        "status": {"stageHistory": history} if history is not None else {},
    }  # fmt: skip


def _owner(manager, time, stage=True):
    fields = {"f:spec": {"f:stage": {}} if stage else {"f:model": {}}}
    return {"manager": manager, "operation": "Update", "time": time, "fieldsV1": fields}


NOW_H = "2026-11-27T14:00:00Z"
HISTORY_CASES = [
    # id, ModelVersion -> stageHistory
    ("first-seen-uses-the-write-time", _mv_with_stage("None", managed=[
        _owner("perennial", "2026-11-27T10:00:00Z")]),
     [{"stage": "None", "time": "2026-11-27T10:00:00Z", "by": "perennial"}]),
    ("no-managed-fields-uses-now", _mv_with_stage("Staging"),
     [{"stage": "Staging", "time": NOW_H}]),
    ("unchanged-stage-adds-nothing", _mv_with_stage("None", [{"stage": "None", "time": "t"}]),
     [{"stage": "None", "time": "t"}]),
    ("newest-writer-of-the-stage", _mv_with_stage("Production", [{"stage": "None", "time": "t"}], [
        _owner("perennial", "2026-11-27T10:00:00Z"),
        _owner("kubectl-patch", "2026-11-27T11:00:00Z"),
        _owner("argocd-controller", "2026-11-27T12:00:00Z", stage=False)]),
     [{"stage": "None", "time": "t"},
      {"stage": "Production", "time": "2026-11-27T11:00:00Z", "by": "kubectl-patch"}]),
]  # fmt: skip


@pytest.mark.parametrize(
    ("mv", "history"), [c[1:] for c in HISTORY_CASES], ids=[c[0] for c in HISTORY_CASES]
)
def test_stage_history(mv, history):
    assert modelversion_status(mv, NOW_H)["stageHistory"] == history


def test_stage_history_keeps_the_last_twenty():
    old = [{"stage": s, "time": f"t{i}"} for i, s in enumerate(["None", "Staging"] * 10)]
    status = modelversion_status(_mv_with_stage("Production", old), NOW_H)
    assert len(status["stageHistory"]) == 20
    assert status["stageHistory"][0] == {"stage": "Staging", "time": "t1"}
    assert status["stageHistory"][-1]["stage"] == "Production"


def test_status_no_longer_carries_legacy_rejections():
    mv = _mv_with_stage("None")
    mv["status"]["rejections"] = [{"inferenceService": "churn"}]
    assert "rejections" not in modelversion_status(mv, NOW_H)
