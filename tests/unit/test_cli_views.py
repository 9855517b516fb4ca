"""status, lineage and compare as tables, from objects shaped as the operator writes them."""

from __future__ import annotations

from typing import Any

import pytest

from perennial_cli import trainingjob as tj
from perennial_cli import views

pytestmark = pytest.mark.unit


def obj(kind: str, name: str, spec: dict[str, Any], status: dict[str, Any] | None = None,
        **meta: Any) -> dict[str, Any]:  # fmt: skip
    return {"kind": kind, "metadata": {"name": name, **meta}, "spec": spec,
            "status": status or {}}  # fmt: skip


MV2 = obj("ModelVersion", "churn-v2", {
    "model": "churn", "version": 2, "stage": "Archived",
    "metrics": {"roc_auc": 0.91, "accuracy": 0.88},
    "source": {"trainingJob": "churn-1", "algorithm": "random_forest",
               "hyperparameters": {"n_estimators": 100},
               "dataset": {"uri": "pvc://data/churn.csv", "sha256": "a" * 64, "rows": 1000}}},
    {"phase": "Ready", "primaryMetric": "roc_auc=0.91"})  # fmt: skip
MV3 = obj("ModelVersion", "churn-v3", {
    "model": "churn", "version": 3, "stage": "Production",
    "metrics": {"roc_auc": 0.95, "log_loss": 0.2},
    "source": {"trainingJob": "churn-20250101030000", "algorithm": "hist_gradient_boosting",
               "hyperparameters": {"n_estimators": 100, "max_depth": 6},
               "dataset": {"uri": "pvc://data/churn.csv", "sha256": "b" * 64, "rows": 1200}}},
    {"phase": "Ready", "primaryMetric": "roc_auc=0.95"})  # fmt: skip
OTHER = obj("ModelVersion", "iris-v1", {"model": "iris", "version": 1}, {"phase": "Ready"})
ISVC = obj("InferenceService", "churn",
           {"model": {"name": "churn", "stage": "Production"},
            "rollout": {"strategy": "Canary", "steps": [10, 50, 100]}},
           {"phase": "Progressing", "currentModelVersion": "churn-v2", "readyReplicas": 3,
            "replicas": 3, "canary": {"modelVersion": "churn-v3", "weight": 50, "step": 1},
            "drift": {"psi": 0.12, "worst": "tenure", "samples": 812}})  # fmt: skip
POLICY = obj("RetrainPolicy", "churn",
             {"inferenceService": "churn", "template": {"model": "churn"}},
             {"phase": "Idle", "lastTrainingJob": "churn-20250101030000",
              "lastTrigger": {"reason": "Drift", "time": "2025-01-01T03:00:00Z",
                              "detail": "psi 0.31 over 812 samples"},
              "conditions": [{"type": "Promoted", "status": "True",
                              "reason": "CandidatePromoted",
                              "message": "roc_auc 0.95 vs 0.91"}]})  # fmt: skip
JOB = obj("TrainingJob", "churn-20250101030000", {"model": "churn"},
          {"phase": "Succeeded", "completionTime": "2025-01-01T03:05:00Z"},
          labels={views.RETRAIN_LABEL: "churn"},
          annotations={views.RETRAIN_REASON: "Drift"})  # fmt: skip


def rows_of(view: views.View, title: str) -> list[list[str]]:
    [table] = [t for t in view.tables if t.title == title]
    return [list(r) for r in table.rows]


def test_status_shows_versions_rollout_drift_and_the_last_verdict() -> None:
    view = views.status_view([MV2, MV3, OTHER], [ISVC], [POLICY], [JOB], model="churn")
    versions = rows_of(view, "Model versions")
    assert [r[0] for r in versions] == ["churn-v3", "churn-v2"]  # newest first; iris left out
    assert versions[0][3:5] == ["Production", "roc_auc=0.95"]
    [service] = rows_of(view, "Inference services")
    assert service[1:5] == ["churn (Production)", "churn-v2", "churn-v3 at 50% step 2/3", "3/3"]
    assert service[6] == "psi 0.12 (tenure), 812 samples"
    [policy] = rows_of(view, "Retraining")
    assert policy[3] == "Drift 2025-01-01T03:00:00Z"
    assert policy[4] == "churn-20250101030000 (Succeeded)"
    assert policy[5] == "CandidatePromoted: roc_auc 0.95 vs 0.91"


def test_status_of_an_unknown_model_says_so() -> None:
    view = views.status_view([MV2], [ISVC], [POLICY], [JOB], model="nope")
    assert view.notes == ["nothing found for model nope"]
    assert all(not t.rows for t in view.tables)


def test_lineage_follows_data_to_services_and_names_the_trigger() -> None:
    view = views.lineage_view(MV3, JOB, POLICY, [ISVC])
    rows = rows_of(view, "Lineage of churn-v3")
    assert [r[0] for r in rows] == ["dataset", "trainingjob", "modelversion", "inferenceservice"]
    assert rows[0][1:] == ["pvc://data/churn.csv", f"sha256 {'b' * 64}, 1200 rows"]
    assert rows[3][1:] == ["churn", "canary at 50%"]
    assert view.notes == [
        "started by: RetrainPolicy churn, trigger Drift at 2025-01-01T03:00:00Z: "
        "psi 0.31 over 812 samples"
    ]


def test_lineage_of_a_version_whose_job_is_gone() -> None:
    view = views.lineage_view(MV2, None, None, [ISVC])
    rows = rows_of(view, "Lineage of churn-v2")
    assert "no longer exists" in rows[1][2]
    assert rows[3][1:] == ["churn", "serving (Progressing)"]


def test_compare_puts_differences_side_by_side() -> None:
    view = views.compare_view(MV2, MV3)
    metrics = {r[0]: r[1:] for r in rows_of(view, "Metrics")}
    assert metrics["roc_auc"] == ["0.91", "0.95", "+0.04"]
    assert metrics["accuracy"] == ["0.88", "-", "differs"]
    params = {r[0]: r[1:] for r in rows_of(view, "Hyperparameters")}
    assert params["n_estimators"] == ["100", "100", "+0"]
    assert params["max_depth"][2] == "differs"
    data = {r[0]: r[3] for r in rows_of(view, "Data")}
    assert data == {"uri": "", "sha256": "differs", "rows": "+200"}


def pod(init: dict[str, Any], main: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"name": "p", "creationTimestamp": "2025-01-01T00:00:00Z"},
            "spec": {"initContainers": [{"name": "validate"}], "containers": [{"name": "train"}]},
            "status": {"initContainerStatuses": [{"name": "validate", "state": init}],
                       "containerStatuses": [{"name": "train", "state": main}]}}  # fmt: skip


@pytest.mark.parametrize(("init", "main", "shown"), [
    ({"waiting": {}}, {"waiting": {}}, ["validate"]),
    ({"running": {}}, {"waiting": {}}, ["validate"]),
    ({"terminated": {"exitCode": 3}}, {"waiting": {}}, ["validate"]),
    ({"terminated": {"exitCode": 0}}, {"running": {}}, ["validate", "train"]),
], ids=["not-started", "validating", "data-invalid", "training"])  # fmt: skip
def test_logs_show_the_containers_that_ran(init, main, shown) -> None:
    assert tj.containers_to_show(pod(init, main)) == shown


def test_newest_pod_and_selector() -> None:
    old = {"metadata": {"name": "a", "creationTimestamp": "2025-01-01T00:00:00Z"}}
    new = {"metadata": {"name": "b", "creationTimestamp": "2025-01-01T00:01:00Z"}}
    assert tj.newest_pod([new, old]) is new and tj.newest_pod([]) is None
    job = {"metadata": {"name": "x"}, "status": {"jobName": "x-abc"}}
    assert tj.pod_selector(job) == "batch.kubernetes.io/job-name=x-abc"
    assert tj.pod_selector({"metadata": {"name": "x"}}) == "perennial.dev/trainingjob=x"


@pytest.mark.parametrize(("phase", "step", "done", "ok"), [
    (None, 0, False, False), ("Validating", 1, False, False), ("Training", 2, False, False),
    ("Succeeded", 3, True, True), ("Failed", 3, True, False),
])  # fmt: skip
def test_progress_follows_the_phases(phase, step, done, ok) -> None:
    state = tj.progress({"status": {"phase": phase} if phase else {}})
    assert (state.step, state.total, state.done, state.succeeded) == (step, 3, done, ok)
