"""promote, rollback and retry as plans: which ModelVersion gets which stage or annotation,
and what is refused."""

from __future__ import annotations

import json
from typing import Any

import pytest

from perennial_cli.actions import (
    Refused,
    StageChange,
    promotion,
    retry_plan,
    rollback_plan,
    stage_changed_at,
)

pytestmark = pytest.mark.unit


def mv(version: int, stage: str, *, archived_at: str | None = None, ready: bool = True,
       rejected_by: str | None = None, model: str = "churn") -> dict[str, Any]:  # fmt: skip
    managed = [{"manager": "kubectl", "operation": "Update", "time": "2025-01-01T00:00:00Z",
                "fieldsV1": {"f:spec": {"f:model": {}, "f:version": {}}}}]  # fmt: skip
    if archived_at:
        managed.append({"manager": "perennial-operator", "operation": "Apply",
                        "time": archived_at, "fieldsV1": {"f:spec": {"f:stage": {}}}})  # fmt: skip
    status: dict[str, Any] = {"phase": "Ready" if ready else "Pending"}
    if rejected_by:
        status["rejections"] = [{"inferenceService": rejected_by, "reason": "ErrorRateExceeded"}]
    return {
        "metadata": {"name": f"{model}-v{version}", "managedFields": managed,
                     "creationTimestamp": "2024-12-01T00:00:00Z"},
        "spec": {"model": model, "version": version, "stage": stage}, "status": status,
    }  # fmt: skip


def isvc(model: dict[str, Any], current: str | None = None) -> dict[str, Any]:
    return {"metadata": {"name": "churn"}, "spec": {"model": {"name": "churn", **model}},
            "status": {"currentModelVersion": current} if current else {}}  # fmt: skip


def changes(plan: list[StageChange]) -> list[tuple[str, str, str]]:
    return [(c.modelversion, c.before, c.after) for c in plan]


ROLLBACKS = [
    pytest.param(
        {"stage": "Production"}, "churn-v3",
        [mv(1, "Archived", archived_at="2025-01-02T00:00:00Z"),
         mv(2, "Archived", archived_at="2025-01-03T00:00:00Z"), mv(3, "Production")],
        None, [("churn-v2", "Archived", "Production")],
        id="production-returns-to-the-last-archived",
    ),
    pytest.param(
        {"stage": "Production"}, "churn-v3",
        [mv(1, "Archived", archived_at="2025-01-05T00:00:00Z"),  # rolled back to before
         mv(2, "Archived", archived_at="2025-01-03T00:00:00Z"), mv(3, "Production")],
        None, [("churn-v1", "Archived", "Production")],
        id="archival-time-not-version-number-decides",
    ),
    pytest.param(
        {"stage": "Production"}, "churn-v3",
        [mv(1, "Archived", archived_at="2025-01-02T00:00:00Z"),
         mv(2, "Archived", archived_at="2025-01-03T00:00:00Z", rejected_by="churn"),
         mv(3, "Production")],
        None, [("churn-v1", "Archived", "Production")],
        id="a-version-this-service-rejected-is-skipped",
    ),
    pytest.param(
        {"stage": "Production"}, "churn-v3",
        [mv(1, "Archived", archived_at="2025-01-02T00:00:00Z"),
         mv(2, "Archived", archived_at="2025-01-03T00:00:00Z", ready=False), mv(3, "Production")],
        None, [("churn-v1", "Archived", "Production")],
        id="a-version-that-is-not-ready-is-skipped",
    ),
    pytest.param(
        {"stage": "Staging"}, "churn-v3",
        [mv(2, "Staging"), mv(3, "Staging")], None, [("churn-v3", "Staging", "Archived")],
        id="staging-archives-the-current-when-the-previous-still-holds-it",
    ),
    pytest.param(
        {"stage": "Staging"}, "churn-v3",
        [mv(2, "Archived", archived_at="2025-01-03T00:00:00Z"), mv(3, "Staging")], None,
        [("churn-v2", "Archived", "Staging"), ("churn-v3", "Staging", "Archived")],
        id="staging-restores-the-previous-and-archives-the-current",
    ),
    pytest.param(
        {"stage": "Production"}, "churn-v3",
        [mv(1, "None"), mv(2, "Archived", archived_at="2025-01-03T00:00:00Z"),
         mv(3, "Production")],
        "churn-v1", [("churn-v1", "None", "Production")],
        id="to-names-the-version",
    ),
    pytest.param(
        {"stage": "Production"}, None,
        [mv(2, "Archived", archived_at="2025-01-03T00:00:00Z"), mv(3, "Production"),
         mv(4, "Production", model="other")],
        None, [("churn-v2", "Archived", "Production")],
        id="current-from-the-stage-when-status-has-none",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("model", "current", "mvs", "to", "expected"), ROLLBACKS)
def test_rollback_plan(model, current, mvs, to, expected) -> None:
    assert changes(rollback_plan(isvc(model, current), mvs, to=to)) == expected


REFUSALS = [
    pytest.param({"version": 3}, [mv(3, "None")], None, "change the pinned version in Git",
                 id="pinned"),
    pytest.param({"stage": "Production"}, [mv(3, "Production")], None,
                 "no earlier version to roll back to", id="nothing-earlier"),
    pytest.param({"stage": "Production"}, [mv(2, "Staging")], None,
                 "no version of model churn holds Production", id="nothing-serving"),
    pytest.param({"stage": "Production"}, [mv(2, "Archived"), mv(3, "Production")], "churn-v3",
                 "is the version being served", id="to-the-current"),
    pytest.param({"stage": "Production"}, [mv(3, "Production")], "churn-v9",
                 "is not a version of model churn", id="to-unknown"),
    pytest.param({"stage": "Production"},
                 [mv(2, "Archived", rejected_by="churn"), mv(3, "Production")], "churn-v2",
                 "rolled back by churn before", id="to-a-rejected-version"),
]  # fmt: skip


@pytest.mark.parametrize(("model", "mvs", "to", "message"), REFUSALS)
def test_rollback_refusals(model, mvs, to, message) -> None:
    with pytest.raises(Refused, match=message):
        rollback_plan(isvc(model, "churn-v3"), mvs, to=to)


def test_promotion_is_a_merge_patch_of_the_stage() -> None:
    change = promotion(mv(2, "Staging"), "Production")
    assert (change.before, change.after) == ("Staging", "Production")
    assert change.patch() == {"spec": {"stage": "Production"}}
    with pytest.raises(Refused, match="unknown stage 'Prod'"):
        promotion(mv(2, "Staging"), "Prod")


def test_stage_changed_at_reads_the_entry_that_owns_the_stage() -> None:
    assert stage_changed_at(mv(1, "Archived", archived_at="2025-02-01T00:00:00Z")) == (
        "2025-02-01T00:00:00Z"
    )
    assert stage_changed_at(mv(1, "None")) == "2024-12-01T00:00:00Z"  # never set: created


T1, T2 = "2026-11-27T12:00:00.000001Z", "2026-11-27T13:00:00.000002Z"


def rejected(version: int, stage: str, service: str = "churn", time: str = T1,
             retried: str | None = None, model: str = "churn") -> dict[str, Any]:  # fmt: skip
    """As the operator records it (perennial_operator/api/rejections.py), in an annotation."""
    out = mv(version, stage, model=model)
    value = json.dumps({"inferenceService": service, "reason": "LatencyExceeded",
                        "message": "p99 300ms", "time": time})  # fmt: skip
    notes = {f"rejected.perennial.dev/{service}": value}
    if retried:
        notes[f"retry.perennial.dev/{service}"] = retried
    out["metadata"]["annotations"] = notes
    return out


RETRIES = [
    pytest.param({"stage": "Production"}, [mv(1, "Archived"), rejected(2, "Production")], "2",
                 "churn-v2", "retry.perennial.dev/churn", T1, "churn rolls it out again",
                 id="by-number"),
    pytest.param({"stage": "Production"}, [rejected(2, "Production")], "churn-v2",
                 "churn-v2", "retry.perennial.dev/churn", T1, "rolls it out again", id="by-name"),
    pytest.param({"stage": "Production"}, [rejected(2, "Production", time=T2, retried=T1)], "v2",
                 "churn-v2", "retry.perennial.dev/churn", T2, "rolls it out again",
                 id="a-new-rejection-after-an-old-retry"),
    pytest.param({"stage": "Production"}, [rejected(2, "Archived")], "2", "churn-v2",
                 "retry.perennial.dev/churn", T1, "promote it to roll it out",
                 id="no-longer-in-the-stage"),
    pytest.param({"version": 1}, [mv(1, "None"), rejected(2, "None")], "2", "churn-v2",
                 "retry.perennial.dev/churn", T1, "pins version 1", id="pinned-elsewhere"),
    pytest.param({"stage": "Production"}, [mv(2, "Production", rejected_by="churn")], "2",
                 "churn-v2", "retry.perennial.dev/churn", "", "rolls it out again",
                 id="legacy-status-entry"),
]  # fmt: skip


@pytest.mark.parametrize(("model", "mvs", "version", "name", "key", "time", "note"), RETRIES)
def test_retry_plan(model, mvs, version, name, key, time, note) -> None:
    plan = retry_plan(isvc(model), mvs, version)
    assert plan.modelversion == name
    assert plan.patch() == {"metadata": {"annotations": {key: time}}}
    assert note in str(plan)


@pytest.mark.parametrize(
    ("mvs", "version", "message"),
    [
        ([mv(2, "Production")], "2", "has not rolled back churn-v2"),
        ([rejected(2, "Production", retried=T1)], "2", "or it was retried"),
        ([rejected(2, "Production", service="other")], "2", "has not rolled back"),
        ([rejected(2, "Production")], "churn-v9", "no ModelVersion 'churn-v9'"),
        ([rejected(2, "Production", model="iris")], "2", "no ModelVersion '2' of model churn"),
    ],
    ids=["never-rejected", "already-retried", "rejected-by-another-service", "unknown",
         "another-model"],
)  # fmt: skip
def test_retry_refusals(mvs, version, message) -> None:
    with pytest.raises(Refused, match=message):
        retry_plan(isvc({"stage": "Production"}), mvs, version)


def test_a_retried_rejection_no_longer_blocks_a_rollback_to_it() -> None:
    mvs = [rejected(1, "Archived", retried=T1), mv(2, "Production")]
    mvs[0]["metadata"]["managedFields"].append(
        {"manager": "perennial", "operation": "Apply", "time": "2025-01-02T00:00:00Z",
         "fieldsV1": {"f:spec": {"f:stage": {}}}})  # fmt: skip
    plan = rollback_plan(isvc({"stage": "Production"}, "churn-v2"), mvs)
    assert changes(plan) == [("churn-v1", "Archived", "Production")]
    blocked = [rejected(1, "Archived"), mv(2, "Production")]
    with pytest.raises(Refused, match="no earlier version"):
        rollback_plan(isvc({"stage": "Production"}, "churn-v2"), blocked)
