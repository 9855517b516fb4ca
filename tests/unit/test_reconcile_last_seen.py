"""The last-seen TrainingJobs (reconcile/last_seen.py): a child event's sync that would change
nothing ends without reading the TrainingJob; one that would write only the status writes
it at the last-seen version; one that would write more reads first and decides on what it
read, so a hint that lags never writes a stale status or repeats an Event."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Gauge

from perennial_operator.api.group import API_VERSION
from perennial_operator.config import OperatorConfig
from perennial_operator.decide.trainingjob.status import Decision
from perennial_operator.metrics import TrainingJobPhases
from perennial_operator.reconcile.child_view import ChildView
from perennial_operator.reconcile.last_seen import LAST_APPLIED, LastSeen
from perennial_operator.reconcile.locks import KeyedLocks
from perennial_operator.reconcile.trainingjob import sync_trainingjob
from support.fake_kube import FakeKube
from support.trainingjob_objects import NS, finished_job, running_job, trainingjob

pytestmark = pytest.mark.unit


def _sync(kube: FakeKube, view: ChildView, seen: LastSeen, hinted: bool = True) -> Decision | None:
    gauge = Gauge("trainingjobs", "by phase", ["phase"], registry=CollectorRegistry())
    return sync_trainingjob(
        kube,
        NS,
        "churn-1",
        OperatorConfig(),
        KeyedLocks(),
        TrainingJobPhases(gauge),
        view,
        last_seen=seen,
        hinted=hinted,
    )


def _reads(kube: FakeKube) -> int:
    return sum(kind == "TrainingJob" for kind, _ in kube.reads)


def _world() -> tuple[FakeKube, ChildView, LastSeen]:
    """A TrainingJob whose pod runs, synced once: its status says so, as the hint does."""
    job, pod = running_job()
    kube = FakeKube(trainingjob(), job, pod)
    view, seen = ChildView(), LastSeen()
    view.saw_job(job)
    view.saw_pod(pod)
    seen.saw(kube.get(API_VERSION, "TrainingJob", NS, "churn-1"))  # its watch's ADDED event
    _sync(kube, view, seen, hinted=False)  # reads, writes Training, keeps the answer
    assert kube.get(API_VERSION, "TrainingJob", NS, "churn-1")["status"]["phase"] == "Training"
    kube.reads.clear()
    return kube, view, seen


def test_the_hint_is_kept_slim_and_each_read_is_a_copy() -> None:
    tj = trainingjob()
    tj["metadata"]["managedFields"] = [{"manager": "kubectl", "fieldsV1": {"f:spec": {}}}]
    tj["metadata"]["annotations"] = {LAST_APPLIED: "{...}", "team": "churn"}
    seen = LastSeen()
    seen.saw(tj)
    got = seen.get(NS, "churn-1")
    assert got is not None
    assert "managedFields" not in got["metadata"]
    assert got["metadata"]["annotations"] == {"team": "churn"}
    assert got["spec"] == tj["spec"]
    got["spec"]["model"] = "changed"
    assert seen.get(NS, "churn-1")["spec"]["model"] == "churn"  # type: ignore[index]
    seen.forget(NS, "churn-1")
    assert seen.get(NS, "churn-1") is None and len(seen) == 0


def test_a_child_event_that_changes_nothing_reads_nothing_and_writes_nothing() -> None:
    kube, view, seen = _world()
    writes = len(kube.writes)
    decision = _sync(kube, view, seen)
    assert decision is not None and decision.phase == "Training"
    assert _reads(kube) == 0
    assert len(kube.writes) == writes


def test_the_safety_net_and_the_retries_still_read() -> None:
    kube, view, seen = _world()
    _sync(kube, view, seen, hinted=False)
    assert _reads(kube) == 1


def _pod_succeeded(kube: FakeKube, view: ChildView) -> None:
    """News that changes the status but not the phase (no Event): the pod succeeded, the Job
    controller completes the Job next."""
    _, pod = finished_job()
    pod = copy.deepcopy(pod)
    view.saw_pod(pod)
    kube.objects[kube._key("Pod", NS, pod["metadata"]["name"])] = pod  # noqa: SLF001


def test_status_only_news_is_written_at_the_last_seen_version_without_a_read() -> None:
    kube, view, seen = _world()
    _pod_succeeded(kube, view)
    writes = len(kube.writes)
    _sync(kube, view, seen)
    assert _reads(kube) == 0
    assert [w.verb for w in kube.writes[writes:]] == ["patch_status"]
    stored = kube.get(API_VERSION, "TrainingJob", NS, "churn-1")
    assert "finished; waiting for the Job to complete" in stored["status"]["message"]
    assert seen.get(NS, "churn-1") == stored  # the patch's answer, before its watch event


def test_status_only_news_on_a_stale_hint_conflicts_then_is_decided_on_a_read() -> None:
    kube, view, seen = _world()
    labelled = kube.get(API_VERSION, "TrainingJob", NS, "churn-1")
    labelled["metadata"]["labels"] = {"team": "churn"}  # another writer: a new version
    kube.put(labelled)
    kube.reads.clear()
    _pod_succeeded(kube, view)
    writes, events = len(kube.writes), len(kube.events)
    _sync(kube, view, seen)
    assert _reads(kube) == 1  # refused at the stale version, then read
    assert [w.verb for w in kube.writes[writes:]] == ["patch_status"]  # the read's, once
    assert len(kube.events) == events
    stored = kube.get(API_VERSION, "TrainingJob", NS, "churn-1")
    assert stored["metadata"]["labels"] == {"team": "churn"}
    assert "finished; waiting for the Job to complete" in stored["status"]["message"]


def test_a_hint_behind_our_last_write_repeats_no_event_and_writes_nothing() -> None:
    # The watch delivers an event older than the status we wrote last (a lagging stream):
    # on it, the running pod looks like news. The sync must find out from a read that the
    # status already says so, and neither repeat the step's Event nor write.
    kube, view, seen = _world()
    stale = kube.get(API_VERSION, "TrainingJob", NS, "churn-1")
    stale["status"] = {"phase": "Pending", "observedGeneration": 1}
    seen.saw(stale)
    kube.reads.clear()
    events, writes = len(kube.events), len(kube.writes)
    decision = _sync(kube, view, seen)
    assert decision is not None and decision.phase == "Training"
    assert _reads(kube) == 1
    assert len(kube.events) == events and len(kube.writes) == writes


def test_a_trainingjob_gone_from_the_api_is_forgotten() -> None:
    kube, view, seen = _world()
    job, _ = running_job()
    job["status"] = {"active": 1, "ready": 1}  # news for the view, not for the status
    view.saw_job(job)
    hint = seen.get(NS, "churn-1")
    assert hint is not None
    hint["status"]["phase"] = "Pending"  # so the hint calls for a read
    seen.saw(hint)
    kube.delete(API_VERSION, "TrainingJob", NS, "churn-1")
    assert _sync(kube, view, seen) is None
    assert seen.get(NS, "churn-1") is None


def test_status_only_news_of_a_trainingjob_deleted_since_forgets_it() -> None:
    kube, view, seen = _world()
    _pod_succeeded(kube, view)
    kube.delete(API_VERSION, "TrainingJob", NS, "churn-1")
    assert _sync(kube, view, seen) is None  # no error: the read finds it gone
    assert seen.get(NS, "churn-1") is None


def test_our_write_refreshes_a_hint_but_never_brings_a_dropped_one_back() -> None:
    seen = LastSeen()
    tj = trainingjob()
    seen.refresh(tj)  # not seen by the watch yet: its own event will store it
    assert not seen.knows(NS, "churn-1")
    seen.saw(tj)
    newer = copy.deepcopy(tj)
    newer["status"] = {"phase": "Training"}
    seen.refresh(newer)
    assert seen.get(NS, "churn-1") == newer
    seen.forget(NS, "churn-1")  # its DELETED event
    seen.refresh(newer)  # a write that landed before the deletion, answered after
    assert not seen.knows(NS, "churn-1") and len(seen) == 0


def test_a_sync_whose_trainingjob_was_deleted_from_the_watch_keeps_no_hint() -> None:
    # The DELETED event dropped the hint while the sync (begun before) was still writing:
    # its write's answer must not store the TrainingJob again (it would be kept for good).
    kube, view, seen = _world()
    seen.forget(NS, "churn-1")
    _pod_succeeded(kube, view)
    writes = len(kube.writes)
    _sync(kube, view, seen, hinted=False)
    assert [w.verb for w in kube.writes[writes:]] == ["patch_status"]  # it did write
    assert not seen.knows(NS, "churn-1")


class Encoded(dict[str, Any]):
    """A status that notes each time it is encoded (json reads a dict's items)."""

    def __init__(self, *args: Any, then: Any = None) -> None:
        super().__init__(*args)
        self.encoded = 0
        self.then = then

    def items(self) -> Any:
        self.encoded += 1
        if self.then is not None:
            self.then()
        return super().items()


def test_our_write_for_a_trainingjob_without_a_hint_is_not_even_encoded() -> None:
    # In a burst most writes' answers find a hint; one that does not costs no JSON.
    seen = LastSeen()
    tj = trainingjob()
    tj["status"] = status = Encoded({"phase": "Training"})
    seen.refresh(tj)
    assert status.encoded == 0 and not seen.knows(NS, "churn-1")
    seen.saw(trainingjob())
    seen.refresh(tj)
    assert status.encoded == 1 and seen.get(NS, "churn-1") == tj


def test_a_hint_dropped_while_our_answer_is_encoded_is_not_brought_back() -> None:
    seen = LastSeen()
    seen.saw(trainingjob())
    tj = trainingjob()
    tj["status"] = Encoded({"phase": "Training"}, then=lambda: seen.forget(NS, "churn-1"))
    seen.refresh(tj)  # its DELETED event came meanwhile
    assert not seen.knows(NS, "churn-1") and len(seen) == 0
