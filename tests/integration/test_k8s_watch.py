"""Our list-then-watch (k8s/watch.py) on the real API server: what it delivers as objects
come, change and go; listed again, it delivers the objects deleted meanwhile as DELETED."""

from __future__ import annotations

import queue
from typing import Any

import pytest
from kubernetes import client

from perennial_operator.k8s.watch import ListWatch
from support.cluster_fixtures import TestCluster

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
