"""The Job and Pod watches: our own (k8s/watch.py), not kopf's.

kopf takes every event of a kind it watches through its per-object machinery, even events no
handler wants; the TrainingJobs' Jobs and pods make most of the events in a burst (issue 18,
docs/operator.md "The Job and Pod watches, ours"). Here one thread per kind and namespace
lists, watches and hands each event to the handlers that want it:
- a TrainingJob's Job or pod: to the TrainingJob's view of its children (thread-safe), which
  notes news for its sync (handlers/trainingjob.py);
- a RetrainPolicy's probe Job: its policy synced on the loop's default executor
  (handlers/retrainpolicy.py);
- every pod (a pending one may need a pool's node, one gone may leave a node idle): to the
  ComputePool loops, on the event loop (handlers/computepool.py).

The namespaces are the operator's: every one (one watch per kind), the names given, or, for
globs, those the Namespace watch shows matching them (kopf's own matching). They run while
kopf runs, so only on the Lease's holder. This module is imported after the handlers whose
start-up makes what these watches feed (handlers/__init__.py; a unit test holds the order).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

import kopf

# kopf's own matching, so a glob means here what it means to kopf's watches (not public API:
# tests/unit/test_handlers_watches.py holds its behaviour).
from kopf._cogs.structs.references import NamespaceName, match_namespace
from kubernetes.client import ApiClient

from perennial_operator.api.group import MANAGED_BY, MANAGED_BY_VALUE
from perennial_operator.handlers import computepool, retrainpolicy, trainingjob
from perennial_operator.k8s.client import make_api_client
from perennial_operator.k8s.watch import ListWatch

log = logging.getLogger(__name__)

Deliver = Callable[[str, dict[str, Any]], None]
# (name, path of a namespace's objects, path of every namespace's)
JOBS = ("jobs", "/apis/batch/v1/namespaces/{}/jobs", "/apis/batch/v1/jobs")
PODS = ("pods", "/api/v1/namespaces/{}/pods", "/api/v1/pods")
OURS = f"{MANAGED_BY}={MANAGED_BY_VALUE}"


def plain_names(patterns: Sequence[str]) -> list[str] | None:
    """The namespaces, if every pattern is one name; None if a glob needs the Namespace
    watch. An empty list of patterns means every namespace (cluster-wide)."""
    if any(c in p for p in patterns for c in "*?,!"):
        return None
    return list(patterns)


def matches(namespace: str, patterns: Sequence[str]) -> bool:
    return any(match_namespace(NamespaceName(namespace), p) for p in patterns)


class ChildWatches:
    """The Job and Pod watches of each watched namespace (None: cluster-wide)."""

    def __init__(self, api: ApiClient, deliver_job: Deliver, deliver_pod: Deliver) -> None:
        self.api = api
        self.kinds = ((JOBS, OURS, deliver_job), (PODS, "", deliver_pod))
        self._lock = threading.Lock()
        self._open: dict[str | None, list[ListWatch]] = {}
        self._namespaces: ListWatch | None = None

    def open(self, namespace: str | None) -> None:
        with self._lock:
            if namespace in self._open:
                return
            watches = []
            for (name, namespaced, everywhere), selector, deliver in self.kinds:
                path = everywhere if namespace is None else namespaced.format(namespace)
                watch = ListWatch(self.api, path, deliver, label_selector=selector)
                watch.start(f"watch-{name}-{namespace or 'all'}")
                watches.append(watch)
            self._open[namespace] = watches

    def close(self, namespace: str | None) -> None:
        with self._lock:
            for watch in self._open.pop(namespace, []):
                watch.stop()

    def follow(self, patterns: Sequence[str]) -> None:
        """Open the namespaces matching the patterns as the Namespace watch shows them."""

        def namespace_event(kind: str, ns: dict[str, Any]) -> None:
            name = str(ns["metadata"]["name"])
            if kind == "DELETED":
                self.close(name)
            elif matches(name, patterns):
                self.open(name)

        self._namespaces = ListWatch(self.api, "/api/v1/namespaces", namespace_event)
        self._namespaces.start("watch-namespaces")

    def stop(self) -> None:
        if self._namespaces is not None:
            self._namespaces.stop()
        for namespace in list(self._open):
            self.close(namespace)

    def namespaces(self) -> list[str | None]:
        with self._lock:
            return list(self._open)


def _deliver_job(memo: kopf.Memo, loop: asyncio.AbstractEventLoop) -> Deliver:
    def deliver(kind: str, job: dict[str, Any]) -> None:
        trainingjob.job_seen(memo, kind, job)
        retrainpolicy.probe_seen(memo, loop, job)

    return deliver


def _deliver_pod(memo: kopf.Memo, loop: asyncio.AbstractEventLoop) -> Deliver:
    def deliver(kind: str, pod: dict[str, Any]) -> None:
        trainingjob.pod_seen(memo, kind, pod)
        if memo.computepool_loops:  # none: nothing to wake (a new loop looks for itself)
            loop.call_soon_threadsafe(computepool.pod_seen, memo, kind, pod)

    return deliver


@kopf.on.startup()
async def child_watches(memo: kopf.Memo, **_: Any) -> None:
    loop = asyncio.get_running_loop()
    # A client of their own: each watch holds a connection for minutes, which the syncs'
    # pool (k8s/client.py POOL_SIZE) should not count on.
    api = make_api_client()
    watches = ChildWatches(api, _deliver_job(memo, loop), _deliver_pod(memo, loop))
    memo.child_watches = watches
    patterns = list(getattr(memo, "namespaces", None) or [])
    names = plain_names(patterns)
    if names is None:
        watches.follow(patterns)
    else:
        everywhere: list[str | None] = [None]
        for namespace in names or everywhere:
            watches.open(namespace)


@kopf.on.cleanup()
async def stop_child_watches(memo: kopf.Memo, **_: Any) -> None:
    watches: ChildWatches | None = getattr(memo, "child_watches", None)
    if watches is not None:
        watches.stop()
