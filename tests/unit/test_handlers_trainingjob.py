"""The TrainingJob safety net: which TrainingJobs the events keep for the resync loop, and
that the loop syncs each of them (a kopf timer per object did this before, issue 18)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import kopf
import pytest

from perennial_operator.decide.trainingjob.status import needs_resync
from perennial_operator.decide.watch_events import event_needs_sync
from perennial_operator.handlers import trainingjob as h
from perennial_operator.metrics import TrainingJobPhases
from perennial_operator.reconcile.last_seen import LastSeen
from perennial_operator.reconcile.news import NewsBatch

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("status", "due"),
    [
        ({}, True),  # not seen by a sync yet
        ({"phase": "Training"}, True),
        ({"phase": "Failed"}, False),
        ({"phase": "Succeeded"}, True),  # the registration may not have happened
        ({"phase": "Succeeded", "modelVersion": "churn-v3"}, False),
    ],
)
def test_which_trainingjobs_the_safety_net_keeps(status: dict[str, Any], due: bool) -> None:
    assert needs_resync(status) is due


@pytest.mark.parametrize(
    ("kind", "status", "due"),
    [
        (None, {"phase": "Training", "observedGeneration": 1}, True),  # listed at start-up
        ("ADDED", {}, True),
        ("MODIFIED", {"phase": "Pending", "observedGeneration": 1}, False),  # our own write
        ("MODIFIED", {}, True),  # e.g. a label set before the first sync answered
        ("DELETED", {}, False),
    ],
)
def test_which_events_of_the_trainingjob_itself_call_for_a_sync(
    kind: str | None, status: dict[str, Any], due: bool
) -> None:
    body = {"metadata": {"name": "a", "generation": 1}, "status": status}
    assert event_needs_sync(kind, body) is due


def _body(name: str, status: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"namespace": "ml", "name": name, "uid": f"u-{name}"},
            "status": status}  # fmt: skip


async def _seen(memo: kopf.Memo, kind: str, body: dict[str, Any]) -> None:
    """As the TrainingJob watch hands an event to the loop; then its sync, if any, ends."""
    sync = h.trainingjob_seen(memo, kind, body)
    if sync is not None:
        await sync


def test_events_keep_the_unfinished_and_the_loop_syncs_each_of_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    synced: list[tuple[str, str]] = []
    hinted: list[bool] = []

    def sync(memo: kopf.Memo, ns: str, name: str, created: object = None, hint: bool = False):
        synced.append((ns, name))
        hinted.append(hint)

    monkeypatch.setattr(h, "_sync", sync)

    async def scenario() -> None:
        memo = kopf.Memo(
            trainingjob_phases=TrainingJobPhases(),
            trainingjobs_unfinished=set(),
            trainingjob_retries=h.Retries[h.Key](h.ERROR_DELAYS, time.monotonic),
            trainingjob_last_seen=LastSeen(),
            trainingjob_news=NewsBatch[h.Key](0.0, time.monotonic),
        )
        for name, status, kind in [
            ("a", {"phase": "Training"}, "ADDED"),  # listed at start-up
            ("b", {"phase": "Pending"}, "ADDED"),
            ("c", {"phase": "Succeeded", "modelVersion": "m-v1"}, "MODIFIED"),  # done
            ("d", {"phase": "Training"}, "ADDED"),
            ("d", {"phase": "Failed"}, "MODIFIED"),  # finished since
            ("b", {"phase": "Pending"}, "DELETED"),  # gone
        ]:
            await _seen(memo, kind, _body(name, status))
        assert memo.trainingjobs_unfinished == {("ml", "a")}
        assert synced == [("ml", "a"), ("ml", "b"), ("ml", "d")]  # listed, or new
        # Every TrainingJob that exists is last seen as its latest event showed it.
        assert [memo.trainingjob_last_seen.get("ml", n) is not None for n in "abcd"] == [
            True, False, True, True]  # fmt: skip
        assert memo.trainingjob_last_seen.get("ml", "d")["status"]["phase"] == "Failed"
        assert not any(hinted)  # the TrainingJob's own events read it
        pod = kopf.Body({"metadata": {"name": "a-train-x", "namespace": "ml",
                                      "labels": {h.LABEL_TRAININGJOB: "a"}}})  # fmt: skip
        h._child_changed(pod, memo)
        assert synced[-1] == ("ml", "d")  # not synced on the event itself: batched
        news = asyncio.create_task(h.news_loop(memo, tick=0.01))
        while synced[-1] != ("ml", "a"):
            await asyncio.sleep(0.01)
        news.cancel()
        assert hinted[-1]  # a child's news may use the hint
        synced.clear()
        hinted.clear()
        loop = asyncio.create_task(h.resync_loop(memo, 0.01, tick=0.01))
        while len(synced) < 2:
            await asyncio.sleep(0.01)
        loop.cancel()

    asyncio.run(scenario())
    assert set(synced) == {("ml", "a")}  # every round, the one unfinished TrainingJob only
    assert all(hinted)  # the sweep decides on the last-seen TrainingJob first


def test_a_failed_sync_is_tried_again_after_its_delay_not_only_by_the_minute_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[str] = []
    hinted: list[bool] = []

    def flaky(
        memo: kopf.Memo, ns: str, name: str, created: object = None, hint: bool = False
    ) -> None:
        calls.append(name)
        hinted.append(hint)
        if len(calls) == 1:
            raise kopf.TemporaryError("HTTP 500, retrying")

    monkeypatch.setattr(h, "_sync", flaky)

    async def scenario() -> kopf.Memo:
        memo = kopf.Memo(
            trainingjob_phases=TrainingJobPhases(),
            trainingjobs_unfinished=set(),
            trainingjob_retries=h.Retries[h.Key]((0.05,), time.monotonic),
            trainingjob_last_seen=LastSeen(),
        )
        await _seen(memo, "ADDED", _body("x", {}))
        assert len(memo.trainingjob_retries) == 1
        loop = asyncio.create_task(h.resync_loop(memo, interval=3600, tick=0.01))
        while len(calls) < 2:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.1)  # succeeded: not tried a third time
        loop.cancel()
        return memo

    memo = asyncio.run(scenario())
    assert calls == ["x", "x"]
    assert hinted == [False, False]  # a retry reads the TrainingJob
    assert len(memo.trainingjob_retries) == 0


def test_a_childs_news_in_quick_steps_is_one_sync_after_the_period_and_none_once_deleted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    synced: list[tuple[str, str, float]] = []

    def sync(memo: kopf.Memo, ns: str, name: str, created: object = None, hint: bool = False):
        synced.append((ns, name, time.monotonic()))

    monkeypatch.setattr(h, "_sync", sync)

    def child(owner: str, name: str) -> dict[str, Any]:
        return {"metadata": {"name": name, "namespace": "ml",
                             "labels": {h.LABEL_TRAININGJOB: owner}}}  # fmt: skip

    async def scenario() -> float:
        memo = kopf.Memo(
            trainingjob_retries=h.Retries[h.Key](h.ERROR_DELAYS, time.monotonic),
            trainingjob_news=NewsBatch[h.Key](1.0, time.monotonic),  # >> the steps' 0.1 s
            trainingjobs_unfinished=set(),
            trainingjob_last_seen=LastSeen(),
            trainingjob_phases=TrainingJobPhases(),
        )
        for name in ("a", "gone"):  # the TrainingJobs as their watch showed them
            memo.trainingjob_last_seen.saw(_body(name, {"phase": "Pending"}))
        h._child_changed(child("unseen", "unseen-train"), memo)  # its own event syncs it
        loop = asyncio.create_task(h.news_loop(memo, tick=0.01))
        began = time.monotonic()
        for step in ("made", "unschedulable", "job-status"):  # a pod's first steps
            h._child_changed(child("a", f"a-train-{step}"), memo)
            h._child_changed(child("gone", "gone-train"), memo)
            await asyncio.sleep(0.03)
        await _seen(memo, "DELETED", _body("gone", {}))
        h._child_changed(child("gone", "gone-train"), memo)  # the garbage collector's DELETED
        assert len(memo.trainingjob_news) == 1  # "a" only: no news for a deleted one
        await asyncio.sleep(1.3)
        loop.cancel()
        return began

    began = asyncio.run(scenario())
    assert [(ns, name) for ns, name, _ in synced] == [("ml", "a")]  # once; none for the others
    assert synced[0][2] - began >= 1.0  # after the period that began with the first news
