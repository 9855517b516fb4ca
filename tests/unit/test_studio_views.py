"""The Studio's page models, from a Store holding a small world: the decisions each page
makes (what a drift number may say, where a job failed, which canary step passed, what
the timeline tells and in which order)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from perennial_studio.project import project
from perennial_studio.store import Store
from perennial_studio.timeline import timeline
from perennial_studio.views.groups import drift_view, model_groups
from perennial_studio.views.inferenceservice import measured, rollout_view
from perennial_studio.views.lineage import lineage
from perennial_studio.views.retrainpolicy import policy_page
from perennial_studio.views.trainingjob import data_report, parse_failure_sentences, steps
from studio_support.world import FAILURES, NS, objects, store

pytestmark = pytest.mark.unit


def isvc_with(drift: dict[str, Any] | None, enabled: bool = True) -> dict[str, Any]:
    obj = copy.deepcopy(objects()["InferenceService"][0])
    obj["spec"]["monitoring"] = {"drift": {"enabled": enabled}}
    obj["status"].pop("drift")
    if drift is not None:
        obj["status"]["drift"] = drift
    return project("InferenceService", obj)


DRIFT = [
    # drift status, policy minSamples 500 / psi 0.2 from the world's RetrainPolicy
    (None, True, "waiting", None),
    ({"psi": 3.0, "samples": 4}, True, "insufficient", None),
    ({"psi": 3.0, "samples": 499}, True, "insufficient", None),
    ({"psi": 0.2, "samples": 500}, True, "stable", 0.2),
    ({"psi": 0.21, "samples": 900}, True, "drifting", 0.21),
    ({"psi": 0.5, "samples": 900}, False, "off", None),
]


@pytest.mark.parametrize(
    ("drift", "enabled", "state", "psi"), DRIFT, ids=[f"{d[2]}-{i}" for i, d in enumerate(DRIFT)]
)
def test_no_psi_is_said_below_the_minimum_sample_count(
    drift: dict[str, Any] | None, enabled: bool, state: str, psi: float | None
) -> None:
    snap = store().snapshot()
    view = drift_view(snap, isvc_with(drift, enabled), default_min_samples=100)
    assert (view.state, view.psi, view.min_samples, view.threshold) == (state, psi, 500, 0.2)


def test_the_services_own_minimum_comes_first_and_a_missing_psi_is_never_shown() -> None:
    isvc = isvc_with({"psi": 0.5, "samples": 150})
    isvc["spec"]["monitoring"]["drift"]["minSamples"] = 120
    view = drift_view(store().snapshot(), isvc, 200)
    assert (view.state, view.psi, view.min_samples) == ("drifting", 0.5, 120)
    # what the operator writes below its minimum: samples and time, no psi
    below = drift_view(store().snapshot(), isvc_with({"samples": 900, "time": "t"}), 200)
    assert (below.state, below.psi) == ("insufficient", None)


def test_without_a_policy_the_studios_minimum_applies() -> None:
    s = store()
    s.replace("RetrainPolicy", [])
    view = drift_view(s.snapshot(), isvc_with({"psi": 0.5, "samples": 150}), 200)
    assert (view.state, view.psi, view.min_samples) == ("insufficient", None, 200)


def test_the_data_report_is_read_from_the_validate_containers_message() -> None:
    snap = store().snapshot()
    tj = snap.get("TrainingJob", NS, "churn-bad")
    pods = snap.labelled("Pod", "perennial.dev/trainingjob", NS, "churn-bad")
    report = data_report(tj, pods)
    assert report.outcome == "failed" and "termination message" in report.source
    assert [(c.check, c.column, c.observed, c.expected) for c in report.failures] == [
        (f["check"], f["column"] or "", f["observed"], f["expected"]) for f in FAILURES
    ]


def test_without_the_pod_the_report_comes_from_the_condition() -> None:
    snap = store().snapshot()
    report = data_report(snap.get("TrainingJob", NS, "churn-bad"), pods=[])
    assert report.outcome == "failed" and "condition" in report.source
    assert [(c.check, c.column) for c in report.failures] == [
        ("dataset_rows_below_minimum", ""),
        ("column_has_nulls", "tenure"),
    ]


def test_failure_sentences_parse_what_the_operator_writes() -> None:
    message = (
        "3 failing check(s); value_not_in_categories on column plan: observed ['x'], "
        "expected ['a', 'b']; dataset_rows_below_minimum: observed 5, expected >= 10; "
        "(more failures truncated)"
    )
    parsed = parse_failure_sentences(message)
    assert [(c.check, c.column, c.observed, c.expected) for c in parsed] == [
        ("value_not_in_categories", "plan", "['x']", "['a', 'b']"),
        ("dataset_rows_below_minimum", "", "5", ">= 10"),
    ]


STEPS = [
    ({"phase": "Pending"}, ["current", "todo", "todo", "todo"]),
    ({"phase": "Validating"}, ["done", "current", "todo", "todo"]),
    ({"phase": "Training"}, ["done", "done", "current", "todo"]),
    ({"phase": "Succeeded"}, ["done", "done", "done", "done"]),
    (
        {"phase": "Failed", "conditions": [{"type": "DataValidated", "status": "False"}]},
        ["done", "failed", "todo", "failed"],
    ),
    (
        {"phase": "Failed", "conditions": [{"type": "DataValidated", "status": "True"}]},
        ["done", "done", "failed", "failed"],
    ),
    ({"phase": "Failed"}, ["failed", "todo", "todo", "failed"]),
]


@pytest.mark.parametrize(("status", "states"), STEPS, ids=[str(i) for i in range(len(STEPS))])
def test_the_stepper_shows_where_a_job_is_or_failed(
    status: dict[str, Any], states: list[str]
) -> None:
    assert [s.state for s in steps({"status": status})] == states


def test_canary_steps_carry_the_analysis_that_passed_them() -> None:
    snap = store().snapshot()
    isvc = snap.get("InferenceService", NS, "churn")
    view = rollout_view(isvc, snap.events_for("InferenceService", NS, "churn"))
    assert view is not None and view.version == "churn-v3"
    assert [s.state for s in view.steps] == ["passed", "current", "todo"]
    first = view.steps[0]
    assert first.canary is not None and (
        first.canary.requests,
        first.canary.error_rate,
        first.canary.p99_ms,
    ) == (120, 0.0, 12.5)
    assert first.stable is not None and first.stable.requests == 300


def test_a_rollback_marks_the_step_it_failed() -> None:
    snap = store().snapshot()
    isvc = copy.deepcopy(snap.get("InferenceService", NS, "churn"))
    isvc["status"].pop("canary")
    events = [
        {
            "reason": "RolledBack",
            "time": "2026-01-03T10:06:00Z",
            "message": "rolled back churn-v3: error rate 0.2 > 0.01; canary: 10 requests, "
            "error rate 0.2000, p99 n/a; stable: no requests",
        },
        *snap.events_for("InferenceService", NS, "churn"),
    ]
    view = rollout_view(isvc, events)
    assert view is not None
    assert [s.state for s in view.steps] == ["passed", "failed", "todo"]
    assert view.steps[1].canary is not None and view.steps[1].canary.error_rate == 0.2


def test_measured_reads_both_tracks() -> None:
    found = measured("; canary: no requests; stable: 5 requests, error rate 0.2000, p99 n/a")
    assert found["canary"].requests == 0 and found["stable"].error_rate == 0.2
    assert found["stable"].p99_ms is None


def test_the_timeline_is_newest_first_and_tells_each_thing_once() -> None:
    entries = timeline(store().snapshot(), namespace=NS, model="churn")
    times = [e.time for e in entries]
    assert times == sorted(times, reverse=True)
    # The policy's lastTrigger and its Triggered Event are the same fact: told once.
    triggered = [e for e in entries if e.kind == "RetrainPolicy" and e.reason == "Triggered"]
    assert len(triggered) == 1 and triggered[0].from_event
    categories = {e.category for e in entries}
    assert {
        "trained",
        "registered",
        "promoted",
        "canary",
        "retrain",
        "gate",
        "failed",
    } <= categories
    promoted = [e for e in entries if e.reason == "Promoted"]
    assert {e.category for e in promoted} == {"gate"}  # the policy's Promoted is a gate verdict


def test_lineage_links_dataset_job_version_service_and_names_the_trigger() -> None:
    group = model_groups(store().snapshot())[(NS, "churn")]
    graph = lineage(group)
    assert ("job:churn-3", "version:churn-v3") in graph.edges
    assert ("version:churn-v2", "service:churn") in graph.edges  # current
    assert ("version:churn-v3", "service:churn") in graph.edges  # canary
    job = graph.node("job:churn-3")
    assert job is not None and job.sub.startswith("churn-fresh: Drift")
    datasets = [n for n in graph.nodes if n.column == 0]
    assert datasets and all(n.url is None for n in datasets)


def test_the_policy_page_judges_triggers_and_gate_verdicts() -> None:
    page = policy_page(store().snapshot(), NS, "churn-fresh", now=1.9e9)
    assert page is not None
    rows = {t.name: t for t in page.triggers}
    assert rows["drift"].fires is True and "900 samples" in rows["drift"].current
    assert rows["performance"].fires is False  # 0.88 is not below 0.85
    assert rows["schedule"].fires is None
    [job] = page.jobs
    assert (job.candidate, job.verdict) == ("churn-v3", "promoted")
    assert job.improvement == pytest.approx(0.02)
    assert page.cooldown.fires is False  # long past


def test_a_store_that_has_not_listed_everything_says_so() -> None:
    s = Store()
    s.replace("TrainingJob", [])
    assert not s.snapshot().synced


def test_the_model_page_reads_the_stage_history_and_rejections_from_the_objects() -> None:
    from perennial_operator.api.rejections import record, retry_key
    from perennial_studio.views.groups import ModelGroup
    from perennial_studio.views.model import stage_history, version_row

    mv = {
        "metadata": {"name": "churn-v2", "namespace": NS, "annotations": {
            **record("churn", "ErrorRateExceeded", "error rate 0.2", "T1"),
            **record("canary-lab", "LatencyExceeded", "p99 400ms", "T2"),
            retry_key("canary-lab"): "T2"}},
        "spec": {"model": "churn", "version": 2, "stage": "Production"},
        "status": {"stageHistory": [
            {"stage": "None", "time": "2026-01-01T00:00:00Z", "by": "perennial"},
            {"stage": "Staging", "time": "2026-01-02T00:00:00Z", "by": "kubectl-patch"},
            {"stage": "Production", "time": "2026-01-03T00:00:00Z", "by": "perennial-cli"}]},
    }  # fmt: skip
    row = version_row(NS, mv)
    assert [(r["inferenceService"], r["retried"]) for r in row.rejections] == [
        ("churn", False), ("canary-lab", True)]  # fmt: skip
    group = ModelGroup(NS, "churn", [mv])
    changes = stage_history(store().snapshot(), group)
    assert [(c.old, c.new, c.source) for c in changes] == [
        ("Staging", "Production", "perennial-cli"),
        ("None", "Staging", "kubectl-patch"),
    ]
