"""The TrainingJob, Job and Pod watches: our own (k8s/watch.py), not kopf's.

kopf takes every event of a kind it watches through its per-object machinery (a worker task,
its handler filters, a logging context), even events no handler wants; the TrainingJobs, their
Jobs and their pods make most of the events in a burst (issue 18, docs/operator.md "The
TrainingJob, Job and Pod watches, ours"). Here one thread per kind and namespace lists,
watches and hands each event to the handlers that want it:
- a TrainingJob: its bookkeeping and sync on the event loop (handlers/trainingjob.py); one of
  a RetrainPolicy's: its policy synced on the loop's default executor
  (handlers/retrainpolicy.py);
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

from perennial_operator.api.group import (
    GROUP,
    MANAGED_BY,
    MANAGED_BY_VALUE,
    TRAININGJOBS,
    VERSION,
)
from perennial_operator.handlers import computepool, retrainpolicy, trainingjob
from perennial_operator.k8s.client import copy_api_client
from perennial_operator.k8s.watch import ListWatch

log = logging.getLogger(__name__)

Deliver = Callable[[str, dict[str, Any]], None]
# (name, path of a namespace's objects, path of every namespace's)
Kind = tuple[str, str, str]
TRAININGJOB_KIND: Kind = (
    TRAININGJOBS,
    f"/apis/{GROUP}/{VERSION}/namespaces/{{}}/{TRAININGJOBS}",
    f"/apis/{GROUP}/{VERSION}/{TRAININGJOBS}",
)
JOBS: Kind = ("jobs", "/apis/batch/v1/namespaces/{}/jobs", "/apis/batch/v1/jobs")
PODS: Kind = ("pods", "/api/v1/namespaces/{}/pods", "/api/v1/pods")
OURS = f"{MANAGED_BY}={MANAGED_BY_VALUE}"
WATCH_POOL_SIZE = 1024  # idle connections kept; a slot costs nothing until it holds one


def plain_names(patterns: Sequence[str]) -> list[str] | None:
    """The namespaces, if every pattern is one name; None if a glob needs the Namespace
    watch. An empty list of patterns means every namespace (cluster-wide)."""
    if any(c in p for p in patterns for c in "*?,!"):
        return None
    return list(patterns)


def matches(namespace: str, patterns: Sequence[str]) -> bool:
    return any(match_namespace(NamespaceName(namespace), p) for p in patterns)


class Watches:
    """A watch of each kind (its paths, a label selector, where its events go) in each
    watched namespace (None: cluster-wide)."""

    def __init__(self, api: ApiClient, kinds: Sequence[tuple[Kind, str, Deliver]]) -> None:
        self.api = api
        self.kinds = tuple(kinds)
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


def _deliver_trainingjob(memo: kopf.Memo, loop: asyncio.AbstractEventLoop) -> Deliver:
    def deliver(kind: str, tj: dict[str, Any]) -> None:
        loop.call_soon_threadsafe(trainingjob.trainingjob_seen, memo, kind, tj)
        retrainpolicy.trainingjob_seen(memo, loop, tj)

    return deliver


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


def kinds(memo: kopf.Memo, loop: asyncio.AbstractEventLoop) -> list[tuple[Kind, str, Deliver]]:
    return [
        (TRAININGJOB_KIND, "", _deliver_trainingjob(memo, loop)),
        (JOBS, OURS, _deliver_job(memo, loop)),
        (PODS, "", _deliver_pod(memo, loop)),
    ]


@kopf.on.startup()
async def start_watches(memo: kopf.Memo, **_: Any) -> None:
    loop = asyncio.get_running_loop()
    # A client of their own: each watch holds a connection for minutes, which the syncs'
    # pool (k8s/client.py POOL_SIZE) should not count on. Its pool keeps up to
    # WATCH_POOL_SIZE idle connections: one per watch (three per namespace), so no
    # connection is thrown away, with urllib3's "Connection pool is full" warning, each
    # time a watch ends (every SERVER_SECONDS) when many namespaces are named. A copy of
    # the handlers' client's configuration (handlers/startup.py): the credentials are not
    # loaded again, and are refreshed as that client's are.
    api = copy_api_client(memo.api_client, WATCH_POOL_SIZE)
    watches = Watches(api, kinds(memo, loop))
    memo.watches = watches
    patterns = list(getattr(memo, "namespaces", None) or [])
    names = plain_names(patterns)
    if names is None:
        watches.follow(patterns)
    else:
        everywhere: list[str | None] = [None]
        for namespace in names or everywhere:
            watches.open(namespace)


@kopf.on.cleanup()
async def stop_watches(memo: kopf.Memo, **_: Any) -> None:
    watches: Watches | None = getattr(memo, "watches", None)
    if watches is not None:
        watches.stop()
