"""The Studio's actions as decisions: what each writes, and what it refuses and why."""

from __future__ import annotations

from typing import Any

import pytest

from perennial_studio import actions
from perennial_studio.actions import (
    Refused,
    previous_holder,
    promote_plan,
    rollback_plan,
    suspend_plan,
)

pytestmark = pytest.mark.unit


def mv(version: int, stage: str, rejected_by: str | None = None) -> dict[str, Any]:
    status = {"rejections": [{"inferenceService": rejected_by}]} if rejected_by else {}
    return {
        "metadata": {"name": f"churn-v{version}", "namespace": "ml"},
        "spec": {"model": "churn", "version": version, "stage": stage},
        "status": status,
    }


def isvc(current: str | None, **model: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "churn", "namespace": "ml"},
        "spec": {"model": {"name": "churn", **(model or {"stage": "Production"})}},
        "status": {"currentModelVersion": current} if current else {},
    }


def stage_event(version: int, old: str, new: str, time: str) -> dict[str, Any]:
    return {
        "kind": "ModelVersion",
        "name": f"churn-v{version}",
        "reason": "StageChanged",
        "message": f"stage {old} -> {new}",
        "time": time,
    }


def test_promote_is_a_merge_patch_of_the_stage_with_an_event() -> None:
    plan = promote_plan(mv(3, "Staging"), "Production")
    [write] = plan.writes
    assert (write.kind, write.name, write.patch) == (
        "ModelVersion",
        "churn-v3",
        {"spec": {"stage": "Production"}},
    )
    assert write.reason == "StageSet" and "stage Staging -> Production" in write.message
    assert "archives the previous Production" in plan.summary


@pytest.mark.parametrize(
    ("stage", "why"), [("Production", "already holds"), ("Canary", "unknown stage")]
)
def test_promote_refuses(stage: str, why: str) -> None:
    with pytest.raises(Refused, match=why):
        promote_plan(mv(3, "Production"), stage)


def test_a_pinned_service_is_rolled_back_in_git_not_here() -> None:
    with pytest.raises(Refused, match="pins spec.model.version: 4.*Git"):
        rollback_plan(isvc("churn-v4", version=4), [mv(3, "Archived"), mv(4, "None")], [])


ROLLBACKS = [
    pytest.param(
        [mv(1, "Archived"), mv(2, "Archived"), mv(3, "Production")],
        [
            stage_event(1, "None", "Production", "2026-01-01T00:00:00Z"),
            stage_event(2, "None", "Production", "2026-01-02T00:00:00Z"),
            stage_event(3, "None", "Production", "2026-01-03T00:00:00Z"),
        ],
        "churn-v2",
        "stage history",
        id="the last holder before the current, from Events",
    ),
    pytest.param(
        [mv(1, "Archived"), mv(2, "Archived", rejected_by="churn"), mv(3, "Production")],
        [
            stage_event(1, "None", "Production", "2026-01-01T00:00:00Z"),
            stage_event(2, "None", "Production", "2026-01-02T00:00:00Z"),
            stage_event(3, "None", "Production", "2026-01-03T00:00:00Z"),
        ],
        "churn-v1",
        "stage history",
        id="never a version this service rejected",
    ),
    pytest.param(
        [mv(1, "Archived"), mv(2, "Archived"), mv(3, "Production"), mv(4, "None")],
        [],
        "churn-v2",
        "no stage history",
        id="without Events: the newest older Archived",
    ),
    pytest.param(
        [mv(5, "Archived"), mv(3, "Production")],
        [
            stage_event(5, "None", "Production", "2026-01-01T00:00:00Z"),
            stage_event(3, "None", "Production", "2026-01-03T00:00:00Z"),
        ],
        "churn-v5",
        "stage history",
        id="a higher version that held it earlier",
    ),
]


@pytest.mark.parametrize(("versions", "events", "previous", "how"), ROLLBACKS)
def test_rollback_brings_back_the_previous_holder_of_the_stage(
    versions: list[dict[str, Any]], events: list[dict[str, Any]], previous: str, how: str
) -> None:
    plan = rollback_plan(isvc("churn-v3"), versions, events)
    first, record = plan.writes[0], plan.writes[-1]
    assert (first.name, first.patch) == (previous, {"spec": {"stage": "Production"}})
    assert how in plan.summary and "the operator archives churn-v3" in plan.summary
    # Production: the operator archives the current one; the Studio writes only one stage.
    assert [w.name for w in plan.writes if w.patch] == [previous]
    assert (record.kind, record.patch, record.reason) == (
        "InferenceService",
        {},
        "RollbackRequested",
    )


def test_rollback_of_a_staging_service_archives_the_current_itself() -> None:
    versions = [mv(1, "Archived"), mv(2, "Staging")]
    events = [
        stage_event(1, "None", "Staging", "2026-01-01T00:00:00Z"),
        stage_event(2, "None", "Staging", "2026-01-02T00:00:00Z"),
    ]
    plan = rollback_plan(isvc("churn-v2", stage="Staging"), versions, events)
    patched = [(w.name, w.patch["spec"]["stage"]) for w in plan.writes if w.patch]
    assert patched == [("churn-v1", "Staging"), ("churn-v2", "Archived")]


@pytest.mark.parametrize(
    ("current", "versions", "why"),
    [(None, [], "serves no version"), ("churn-v1", [mv(1, "Production")], "no earlier version")],
)
def test_rollback_refuses_with_nothing_to_go_back_to(
    current: str | None, versions: list[dict[str, Any]], why: str
) -> None:
    with pytest.raises(Refused, match=why):
        rollback_plan(isvc(current), versions, [])


def test_previous_holder_ignores_arrivals_after_the_current_one() -> None:
    versions = [mv(1, "Archived"), mv(2, "Production"), mv(3, "Archived")]
    events = [
        stage_event(1, "None", "Production", "2026-01-01T00:00:00Z"),
        stage_event(2, "None", "Production", "2026-01-02T00:00:00Z"),
        stage_event(3, "None", "Production", "2026-01-05T00:00:00Z"),
    ]
    found = previous_holder(versions[1], versions, events, "Production", "churn")
    assert found is not None and found[0]["metadata"]["name"] == "churn-v1"


@pytest.mark.parametrize(
    ("suspended", "suspend", "reason"), [(False, True, "Suspended"), (True, False, "Resumed")]
)
def test_suspend_and_resume(suspended: bool, suspend: bool, reason: str) -> None:
    rp = {"metadata": {"name": "fresh", "namespace": "ml"}, "spec": {"suspend": suspended}}
    [write] = suspend_plan(rp, suspend).writes
    assert write.patch == {"spec": {"suspend": suspend}} and write.reason == reason
    with pytest.raises(Refused, match="already"):
        suspend_plan(rp, suspended)


def test_the_event_names_the_object_and_who_asked() -> None:
    write = promote_plan(mv(3, "None"), "Staging").writes[0]
    body = actions.event_body(write, "uid-3", "client 127.0.0.1")
    assert body["involvedObject"] == {
        "apiVersion": "perennial.dev/v1alpha1",
        "kind": "ModelVersion",
        "name": "churn-v3",
        "namespace": "ml",
        "uid": "uid-3",
    }
    assert body["source"]["component"] == "perennial-studio"
    assert body["message"].endswith("(client 127.0.0.1)")


def test_previous_holder_reads_the_stage_history_when_the_events_are_gone() -> None:
    def held(version: int, stage: str, *history: tuple[str, str]) -> dict[str, Any]:
        out = mv(version, stage)
        out["status"] = {"stageHistory": [{"stage": s, "time": t} for s, t in history]}
        return out

    versions = [
        held(1, "Archived", ("None", "T0"), ("Production", "2026-01-03T00:00:00Z"),
             ("Archived", "2026-01-04T00:00:00Z")),
        held(2, "Archived", ("None", "T0"), ("Production", "2026-01-01T00:00:00Z"),
             ("Archived", "2026-01-03T00:00:00Z")),
        held(3, "Production", ("None", "T0"), ("Production", "2026-01-04T00:00:00Z")),
    ]  # fmt: skip
    found = previous_holder(versions[2], versions, [], "Production", "churn")
    assert found is not None and found[0]["metadata"]["name"] == "churn-v1"
    assert "stage history" in found[1]
