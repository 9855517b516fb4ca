"""ModelVersions synced from their own watch events (no kopf state on them, issue 18): which
events sync, that a stage change is handled once from what the status recorded, and that a
failed sync is tried again on a fresh read."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import kopf
import pytest
from kubernetes.client.exceptions import ApiException

from perennial_operator.api.group import API_VERSION
from perennial_operator.decide.modelversion.status import recorded_stage
from perennial_operator.handlers import modelversion as h
from perennial_operator.reconcile.locks import KeyedLocks
from perennial_operator.reconcile.modelversion import sync_modelversion
from support.fake_kube import FakeKube

pytestmark = pytest.mark.unit
NS = "ml"


def mv(version: int, stage: str = "None", **status: Any) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "ModelVersion",
        "metadata": {"name": f"churn-v{version}", "namespace": NS},
        "spec": {"model": "churn", "version": version, "stage": stage,
                 "artifact": {"uri": f"pvc://a/churn/{version}", "sha256": "ab" * 32}},
        **({"status": status} if status else {}),
    }  # fmt: skip


def stored(kube: FakeKube, version: int) -> dict[str, Any]:
    return kube.get(API_VERSION, "ModelVersion", NS, f"churn-v{version}")


def set_stage(kube: FakeKube, version: int, stage: str) -> dict[str, Any]:
    """A user's (or the gate's) write of spec.stage: a new generation."""
    body = stored(kube, version)
    body["spec"]["stage"] = stage
    body["metadata"]["generation"] += 1
    return kube.put(body)


@pytest.mark.parametrize(
    ("status", "stage", "recorded"),
    [
        ({}, "Production", None),  # never synced: a creation with a stage is a change
        (
            {"phase": "Ready", "stageHistory": [{"stage": "None"}, {"stage": "Staging"}]},
            "Production",
            "Staging",
        ),  # fmt: skip
        ({"phase": "Ready"}, "Production", "Production"),  # written before stageHistory
    ],
)
def test_the_stage_a_change_is_from_is_the_one_the_status_recorded(
    status: dict[str, Any], stage: str, recorded: str | None
) -> None:
    assert recorded_stage(mv(1, stage, **status)) == recorded


def test_a_stage_change_is_handled_once_then_recorded() -> None:
    kube = FakeKube(mv(1, "Production"), mv(2, "Staging"))
    sync_modelversion(kube, stored(kube, 1))
    sync_modelversion(kube, stored(kube, 2))
    assert kube.reasons() == ["StageChanged", "StageChanged"]  # None -> Production, Staging
    sync_modelversion(kube, set_stage(kube, 2, "Production"))
    assert stored(kube, 1)["spec"]["stage"] == "Archived"  # one Production version per model
    assert [h["stage"] for h in stored(kube, 2)["status"]["stageHistory"]] == [
        "Staging", "Production"]  # fmt: skip
    handled = len(kube.events)
    sync_modelversion(kube, stored(kube, 2))  # e.g. the listing after a restart
    sync_modelversion(kube, stored(kube, 2))
    assert len(kube.events) == handled  # recorded: not handled again
    assert [h["stage"] for h in stored(kube, 2)["status"]["stageHistory"]] == [
        "Staging", "Production"]  # fmt: skip


def test_a_crash_before_the_status_records_the_change_handles_it_again() -> None:
    kube = FakeKube(mv(1, "Production"), mv(2, "Staging"))
    for version in (1, 2):
        sync_modelversion(kube, stored(kube, version))
    body = set_stage(kube, 2, "Production")
    kube.fail("patch_status", "ModelVersion", lambda: ApiException(status=500, reason="x"))
    with pytest.raises(ApiException):
        sync_modelversion(kube, body)
    assert stored(kube, 1)["spec"]["stage"] == "Archived"
    kube = FakeKube(*kube.objects.values())  # the operator again, after the crash
    sync_modelversion(kube, stored(kube, 2))
    assert kube.reasons() == ["StageChanged"]  # handled again, then recorded
    assert stored(kube, 2)["status"]["stageHistory"][-1]["stage"] == "Production"


def _memo(kube: FakeKube, delays: tuple[float, ...] = h.ERROR_DELAYS) -> kopf.Memo:
    return kopf.Memo(
        kube=kube, locks=KeyedLocks(), modelversion_retries=h.Retries[h.Key](delays, time.monotonic)
    )


async def _event(memo: kopf.Memo, kind: str | None, body: dict[str, Any]) -> None:
    event: Any = {"type": kind, "object": body}
    await h.modelversion_event(event=event, body=kopf.Body(body), memo=memo)


def test_its_creation_and_spec_changes_sync_its_own_status_writes_do_not() -> None:
    kube = FakeKube(mv(1))

    async def scenario() -> None:
        memo = _memo(kube)
        await _event(memo, "ADDED", stored(kube, 1))
        assert kube.verbs("ModelVersion") == ["patch_status ModelVersion/churn-v1"]
        reads = len(kube.reads)  # a sync reads the model's version mark
        await _event(memo, "MODIFIED", stored(kube, 1))  # the event of that status write
        await _event(memo, "MODIFIED", stored(kube, 1))  # e.g. a label: same generation
        assert len(kube.reads) == reads + 2  # the test's own two reads: no sync ran
        assert len(kube.verbs("ModelVersion")) == 1
        await _event(memo, "MODIFIED", set_stage(kube, 1, "Staging"))
        assert kube.reasons() == ["StageChanged"]
        assert stored(kube, 1)["status"]["observedGeneration"] == 2
        await _event(memo, None, stored(kube, 1))  # listed after a restart: synced, no news
        await _event(memo, "DELETED", stored(kube, 1))
        assert kube.reasons() == ["StageChanged"]
        assert kube.verbs("ModelVersion").count("patch_status ModelVersion/churn-v1") == 2

    asyncio.run(scenario())


def test_a_failed_sync_is_tried_again_on_a_fresh_read() -> None:
    kube = FakeKube(mv(1))
    failures = [ApiException(status=500, reason="etcd timeout")]
    kube.fail("patch_status", "ModelVersion", lambda: failures.pop())

    async def scenario() -> kopf.Memo:
        memo = _memo(kube, delays=(0.05,))
        await _event(memo, "ADDED", stored(kube, 1))
        assert len(memo.modelversion_retries) == 1 and "status" not in stored(kube, 1)
        kube._failures.clear()
        set_stage(kube, 1, "Staging")  # changed meanwhile: the retry reads it
        loop = asyncio.create_task(h.retry_loop(memo, tick=0.01))
        deadline = time.monotonic() + 5
        while "status" not in stored(kube, 1) and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        loop.cancel()
        return memo

    memo = asyncio.run(scenario())
    assert stored(kube, 1)["status"]["stageHistory"][-1]["stage"] == "Staging"
    assert stored(kube, 1)["status"]["observedGeneration"] == 2
    assert len(memo.modelversion_retries) == 0
