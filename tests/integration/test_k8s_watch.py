"""Our list-then-watch (k8s/watch.py) on the real API server: what it delivers as objects
come, change and go; listed again, it delivers the objects deleted meanwhile as DELETED."""

from __future__ import annotations

import logging
import queue
import time
import uuid
from typing import Any

import pytest
from kubernetes import client

from perennial_operator.handlers.watches import JOBS, OURS, PODS, Watches
from perennial_operator.k8s import watch as watch_module
from perennial_operator.k8s.watch import ListWatch
from support.cluster_fixtures import TestCluster, wait_for_default_serviceaccount

pytestmark = pytest.mark.integration

Seen = queue.Queue[tuple[str, str, dict[str, str]]]


def _configmap(name: str, labels: dict[str, str] | None = None) -> client.V1ConfigMap:
    return client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name=name, labels=labels), data={"k": "v"}
    )


def _watch(api: client.ApiClient, namespace: str) -> tuple[ListWatch, Seen]:
    seen: Seen = queue.Queue()

    def deliver(kind: str, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        seen.put((kind, meta["name"], meta.get("labels") or {}))

    path = f"/api/v1/namespaces/{namespace}/configmaps"
    return ListWatch(api, path, deliver, label_selector="watched=yes"), seen


def _pod() -> client.V1Pod:
    """Restricted, and placed nowhere (no node has the label): deleted at once."""
    return client.V1Pod(
        metadata=client.V1ObjectMeta(name="p"),
        spec=client.V1PodSpec(
            automount_service_account_token=False,
            node_selector={"perennial.dev/test": "nowhere"},
            security_context=client.V1PodSecurityContext(
                run_as_non_root=True,
                run_as_user=1000,
                seccomp_profile=client.V1SeccompProfile(type="RuntimeDefault"),
            ),
            containers=[
                client.V1Container(
                    name="c",
                    image="busybox",
                    security_context=client.V1SecurityContext(
                        allow_privilege_escalation=False,
                        capabilities=client.V1Capabilities(drop=["ALL"]),
                    ),
                )
            ],
        ),
    )


def _next(seen: Seen) -> tuple[str, str]:
    kind, name, _ = seen.get(timeout=20)
    return kind, name


def test_a_list_then_each_change_and_nothing_after_stop(
    cluster: TestCluster, namespace: str, core: client.CoreV1Api
) -> None:
    core.create_namespaced_config_map(namespace, _configmap("before", {"watched": "yes"}))
    core.create_namespaced_config_map(namespace, _configmap("unlabelled"))
    with cluster.api_client() as api:
        watch, seen = _watch(api, namespace)
        watch.start("test-watch")
        try:
            assert _next(seen) == ("ADDED", "before")  # the list; the unlabelled one not
            core.create_namespaced_config_map(namespace, _configmap("after", {"watched": "yes"}))
            assert _next(seen) == ("ADDED", "after")
            core.patch_namespaced_config_map("after", namespace, {"data": {"k": "w"}})
            assert _next(seen) == ("MODIFIED", "after")
            core.delete_namespaced_config_map("before", namespace)
            assert _next(seen) == ("DELETED", "before")
        finally:
            watch.stop()
        core.patch_namespaced_config_map("after", namespace, {"data": {"k": "x"}})
        with pytest.raises(queue.Empty):
            seen.get(timeout=2)


def test_stop_cuts_the_stream_being_read_and_its_connection_is_not_reused(
    cluster: TestCluster,
    namespace: str,
    core: client.CoreV1Api,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A watch stopped mid-stream (a namespace no longer followed, the operator stopping)
    ends now: its thread used to block in the read until the next event or the read timeout
    (70 s). The connection it cut does not go back to the client's pool."""
    core.create_namespaced_config_map(namespace, _configmap("first", {"watched": "yes"}))
    with cluster.api_client() as api, caplog.at_level(logging.DEBUG, watch_module.__name__):
        watch, seen = _watch(api, namespace)
        thread = watch.start("test-watch")
        assert _next(seen) == ("ADDED", "first")  # listed; the watch follows
        time.sleep(1)  # reading the stream, which has nothing to say
        watch.stop()
        thread.join(timeout=10)
        assert not thread.is_alive()
        # The same client answers next: no half-read stream was handed to a request.
        names = [
            c.metadata.name
            for c in client.CoreV1Api(api)
            .list_namespaced_config_map(namespace, label_selector="watched=yes")
            .items
        ]
        assert names == ["first"]
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


def test_a_silent_watch_is_watched_again_without_a_complaint(
    cluster: TestCluster,
    namespace: str,
    core: client.CoreV1Api,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A watch of a kind nobody changes gets no bookmark (they come about once a minute, and
    only with a version newer than the watch's), so it times out now and then: that is
    watched again at once, in a debug line, not as a failure with a warning and a back-off."""
    monkeypatch.setattr(watch_module, "SILENT_SECONDS", 2.0)
    with cluster.api_client() as api, caplog.at_level(logging.DEBUG, watch_module.__name__):
        watch, seen = _watch(api, namespace)
        watch.start("test-watch")
        try:
            time.sleep(5)  # two silences or more
            core.create_namespaced_config_map(namespace, _configmap("later", {"watched": "yes"}))
            assert _next(seen) == ("ADDED", "later")
        finally:
            watch.stop()
    assert any("silent for 2 s; watching again" in r.getMessage() for r in caplog.records)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


def test_a_list_again_says_what_went_since_the_last(
    cluster: TestCluster, namespace: str, core: client.CoreV1Api
) -> None:
    """What run() does after a 410 Gone (the version it held compacted away): list again,
    and deliver as DELETED what the last list or watch showed and the new list lacks."""
    for name in ("stays", "goes"):
        core.create_namespaced_config_map(namespace, _configmap(name, {"watched": "yes"}))
    with cluster.api_client() as api:
        watch, seen = _watch(api, namespace)
        watch.list()
        assert sorted(_next(seen) for _ in range(2)) == [("ADDED", "goes"), ("ADDED", "stays")]
        core.delete_namespaced_config_map("goes", namespace)
        watch.list()
    got = [seen.get(timeout=1) for _ in range(2)]
    assert got == [("ADDED", "stays", {"watched": "yes"}), ("DELETED", "goes", {"watched": "yes"})]
    assert seen.empty()


def test_globs_open_the_matching_namespaces_as_they_come_and_close_them_as_they_go(
    cluster: TestCluster, core: client.CoreV1Api
) -> None:
    """The operator's -n globs (handlers/watches.py): a namespace made after the start that
    matches gets its Job and Pod watches, one that does not gets none."""
    prefix = f"glob-{uuid.uuid4().hex[:6]}"
    pods: queue.Queue[tuple[str, str]] = queue.Queue()
    with cluster.api_client() as api:
        watches = Watches(
            api,
            [
                (JOBS, OURS, lambda kind, job: None),
                (PODS, "", lambda kind, pod: pods.put((kind, pod["metadata"]["namespace"]))),
            ],
        )
        watches.follow([f"{prefix}-*"])
        try:
            for name in (f"{prefix}-a", f"other-{prefix}"):
                core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
                wait_for_default_serviceaccount(core, name)
                core.create_namespaced_pod(name, _pod())
            assert pods.get(timeout=20) == ("ADDED", f"{prefix}-a")
            assert watches.namespaces() == [f"{prefix}-a"]
            core.delete_namespace(f"{prefix}-a")
            deadline = time.monotonic() + 60
            while watches.namespaces() and time.monotonic() < deadline:
                time.sleep(0.5)
            assert watches.namespaces() == []
        finally:
            watches.stop()
            for name in (f"{prefix}-a", f"other-{prefix}"):
                try:
                    core.delete_namespace(name)
                except client.ApiException as exc:
                    if exc.status != 404:  # the first is gone already, unless a step failed
                        raise
    assert all(ns == f"{prefix}-a" for _, ns in list(pods.queue))
