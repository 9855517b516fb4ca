"""Our own TrainingJob, Job and Pod watches' wiring: which namespaces they cover, which
handlers an event reaches, and that they start after what they feed."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import kopf
import kubernetes
import pytest

import perennial_operator.handlers  # noqa: F401  (registers every handler)
from perennial_operator.api.group import (
    LABEL_PROBE,
    LABEL_RETRAINPOLICY,
    LABEL_TRAININGJOB,
    LABEL_TRAININGJOB_UID,
    MANAGED_BY,
    MANAGED_BY_VALUE,
)
from perennial_operator.handlers import computepool, retrainpolicy, startup, trainingjob, watches
from perennial_operator.k8s.client import ThrottledRefresh, make_api_client
from perennial_operator.reconcile.child_view import ChildView
from perennial_operator.reconcile.last_seen import LastSeen
from perennial_operator.reconcile.news import NewsBatch
from support.kubeconfig import write_kubeconfig

pytestmark = pytest.mark.unit


def test_the_watches_start_after_the_state_they_feed() -> None:
    registry = kopf.get_default_registry()
    handlers = [
        h.fn for h in registry._activities.get_all_handlers() if h.activity.value == "startup"
    ]
    order = {fn: i for i, fn in enumerate(handlers)}
    assert order[watches.start_watches] > order[trainingjob.trainingjob_phases]
    assert order[watches.start_watches] > order[computepool.computepool_loops]
    assert order[watches.start_watches] > order[startup.configure]  # the client it copies


def test_kopf_no_longer_watches_trainingjobs_jobs_or_pods() -> None:
    registry = kopf.get_default_registry()
    handlers = [
        *registry._watching.get_all_handlers(),
        *registry._changing.get_all_handlers(),
        *registry._spawning.get_all_handlers(),
        *registry._indexing.get_all_handlers(),
    ]
    watched = {(s.group, s.plural or s.any_name) for h in handlers if (s := h.selector)}
    assert ("perennial.dev", "modelversions") in watched  # the registry was read
    assert not watched & {("perennial.dev", "trainingjobs"), ("batch", "jobs"), ("", "pods")}


@pytest.mark.parametrize(
    ("patterns", "names"),
    [([], []), (["ml", "team-a"], ["ml", "team-a"]), (["team-*"], None), (["!kube-*"], None),
     (["a,b"], None)],
)  # fmt: skip
def test_plain_names_or_globs(patterns: list[str], names: list[str] | None) -> None:
    assert watches.plain_names(patterns) == names


def test_globs_match_as_kopf_matches_them() -> None:
    assert watches.matches("team-a", ["team-*"])
    assert not watches.matches("other", ["team-*"])
    assert watches.matches("other", ["ml", "!kube-*"])  # a leading negation implies *
    assert not watches.matches("kube-system", ["!kube-*"])
    assert watches.matches("myapp-pr-123", ["myapp-*, !*-pr-*, *pr-123"])
    assert not watches.matches("myapp-pr-456", ["myapp-*, !*-pr-*, *pr-123"])


def _memo() -> kopf.Memo:
    memo = kopf.Memo(
        children=ChildView(),
        trainingjob_last_seen=LastSeen(),
        trainingjob_news=NewsBatch[tuple[str, str]](0.5, time.monotonic),
    )
    computepool.computepool_loops(memo=memo)
    memo.trainingjob_last_seen.saw(
        {"metadata": {"namespace": "ml", "name": "tj", "uid": "u1", "resourceVersion": "1"},
         "status": {"phase": "Pending"}}
    )  # fmt: skip
    return memo


def _pod(labels: dict[str, str], **status: Any) -> dict[str, Any]:
    return {
        "metadata": {"namespace": "ml", "name": "tj-train-x", "uid": "p1", "labels": labels},
        "spec": {},
        "status": {"phase": "Pending", **status},
    }


OURS = {MANAGED_BY: MANAGED_BY_VALUE, LABEL_TRAININGJOB: "tj", LABEL_TRAININGJOB_UID: "u1"}


def test_a_trainingjobs_pod_is_news_for_it_and_another_pod_is_not() -> None:
    memo = _memo()  # no pool: nothing reaches the event loop
    deliver = watches._deliver_pod(memo, None)  # type: ignore[arg-type]
    deliver("ADDED", _pod({"app": "web"}))  # not ours: the view keeps nothing of it
    assert memo.children.sizes() == (0, 0) and len(memo.trainingjob_news) == 0
    deliver("ADDED", _pod({**OURS, MANAGED_BY: "someone-else"}))
    assert memo.children.sizes() == (0, 0)
    deliver("ADDED", _pod(OURS))
    assert memo.children.sizes() == (0, 1)
    assert len(memo.trainingjob_news) == 1
    memo.trainingjob_news.forget(("ml", "tj"))
    deliver("DELETED", _pod(OURS))
    assert memo.children.sizes() == (0, 0)
    assert len(memo.trainingjob_news) == 1


POOL = {
    "metadata": {"name": "gpu", "generation": 1},
    "spec": {"node": {"cpu": "8", "memory": "32Gi"}, "labels": {"pool": "gpu"}},
}


def test_a_pending_pod_wakes_a_pool_on_the_event_loop() -> None:
    async def scenario() -> bool:
        memo = _memo()
        loop = asyncio.get_running_loop()
        pool = computepool.PoolLoop(loop, POOL)  # type: ignore[arg-type]
        memo.computepool_loops["gpu"] = pool
        pending = _pod(
            {"app": "web"},
            conditions=[{"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}],
        )
        pending["spec"] = {"nodeSelector": {"pool": "gpu"}}
        # delivered from a watch's thread
        await asyncio.to_thread(watches._deliver_pod(memo, loop), "MODIFIED", pending)
        for _ in range(3):
            await asyncio.sleep(0)
        return pool.wake_event.is_set()

    assert asyncio.run(scenario())


def test_a_finished_probe_syncs_its_policy_off_the_watch_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    synced: list[tuple[str, str]] = []
    monkeypatch.setattr(retrainpolicy, "_sync", lambda memo, ns, name: synced.append((ns, name)))
    labels = {MANAGED_BY: MANAGED_BY_VALUE, LABEL_RETRAINPOLICY: "rp", LABEL_PROBE: "p"}

    def job(**status: Any) -> dict[str, Any]:
        return {"metadata": {"namespace": "ml", "name": "probe", "labels": labels},
                "status": status}  # fmt: skip

    async def scenario() -> None:
        memo, loop = _memo(), asyncio.get_running_loop()
        deliver = watches._deliver_job(memo, loop)
        await asyncio.to_thread(deliver, "MODIFIED", job(active=1))  # running: nothing yet
        await asyncio.sleep(0.2)
        assert synced == []
        await asyncio.to_thread(deliver, "MODIFIED", job(conditions=[{"type": "Complete"}]))
        for _ in range(50):
            if synced:
                break
            await asyncio.sleep(0.02)

    asyncio.run(scenario())
    assert synced == [("ml", "rp")]


def test_a_trainingjob_event_is_kept_on_the_event_loop_and_a_policys_syncs_the_policy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    policies: list[tuple[str, str]] = []
    monkeypatch.setattr(retrainpolicy, "_sync", lambda memo, ns, name: policies.append((ns, name)))
    seen_on: list[int] = []

    def seen(memo: kopf.Memo, kind: str, tj: dict[str, Any]) -> None:
        seen_on.append(threading.get_ident())

    monkeypatch.setattr(trainingjob, "trainingjob_seen", seen)

    def tj(name: str, **labels: str) -> dict[str, Any]:
        return {"metadata": {"namespace": "ml", "name": name, "labels": labels}}

    async def scenario() -> int:
        memo, loop = _memo(), asyncio.get_running_loop()
        deliver = watches._deliver_trainingjob(memo, loop)
        await asyncio.to_thread(deliver, "ADDED", tj("plain"))
        await asyncio.to_thread(deliver, "ADDED", tj("other", **{LABEL_RETRAINPOLICY: "rp"}))
        await asyncio.to_thread(
            deliver,
            "MODIFIED",
            tj("cand", **{MANAGED_BY: MANAGED_BY_VALUE, LABEL_RETRAINPOLICY: "rp"}),
        )
        for _ in range(50):
            if policies and len(seen_on) == 3:
                break
            await asyncio.sleep(0.02)
        return threading.get_ident()

    loop_thread = asyncio.run(scenario())
    assert seen_on == [loop_thread] * 3  # every event's bookkeeping on the loop's thread
    assert policies == [("ml", "rp")]  # only the policy's own (managed-by ours) candidate


def test_the_watches_client_is_a_copy_of_the_handlers_not_a_second_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(write_kubeconfig(tmp_path)))
    main = make_api_client()

    def load_again(*_: Any, **__: Any) -> None:
        raise AssertionError("the credentials loaded a second time")

    monkeypatch.setattr(kubernetes.config, "load_kube_config", load_again)
    monkeypatch.setattr(kubernetes.config, "load_incluster_config", load_again)
    made: list[watches.Watches] = []

    class Unopened(watches.Watches):
        def open(self, namespace: str | None) -> None:  # no threads here
            made.append(self)

    monkeypatch.setattr(watches, "Watches", Unopened)
    memo = _memo()
    memo.api_client, memo.namespaces = main, ["ml"]
    asyncio.run(watches.start_watches(memo=memo))
    api = made[0].api
    assert api is not main and api.configuration is not main.configuration
    assert api.rest_client.pool_manager.connection_pool_kw["maxsize"] == watches.WATCH_POOL_SIZE
    assert api.configuration.host == main.configuration.host
    # Its credentials are refreshed as the handlers' client's are, by a throttle of its own.
    hook = api.configuration.refresh_api_key_hook
    assert isinstance(hook, ThrottledRefresh)
    assert hook is not main.configuration.refresh_api_key_hook
    assert api.configuration.auth_settings()["BearerToken"]["value"] == "Bearer t"
