"""The TrainingJobs as their watch and our own status writes last showed them: a hint that
lets a Job or Pod event's sync, and the minute's safety-net sweep, skip the TrainingJob read
when they would change nothing, or only its status.

Why (issue 18): each of those syncs read its TrainingJob (1.0-1.4 GETs per TrainingJob in
a burst; the sweep alone one per waiting TrainingJob every minute), and most then wrote
nothing: a pod scheduled, the Job's `active` count, changes the status already says.

A hint, never the truth for a write: the sync decides on the hint only when it finds
nothing to do, or only a status to write (a pod made, scheduled or found unschedulable: the
phase stays, so no Event); that status is written at the hint's resourceVersion, so that on
a stale hint the API server refuses it (409) and the sync reads and decides again. One that
would write anything else (an Event, a child, a ModelVersion) reads the TrainingJob from the
API first and decides again, as before. A hint that lags (a watch event older than our last
write, another writer) costs that read (and a refused write), never a stale write.

Kept as compact JSON bytes, without managedFields and kubectl's last-applied annotation:
a TrainingJob's few hundred bytes to a few KB live outside CPython's small-object arenas
(over 512 bytes), so a burst's hints do not pin arenas after they are deleted. Bounded by
the TrainingJobs that exist: a DELETED event, or a read that finds none, drops the hint,
and our writes only refresh a hint the watch stored (never bring a dropped one back).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from typing import Any

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def _slim(body: Mapping[str, Any]) -> dict[str, Any]:
    """The body without what no decision reads and that can be most of its size."""
    meta = dict(body.get("metadata") or {})
    meta.pop("managedFields", None)
    annotations = meta.get("annotations")
    if annotations and LAST_APPLIED in annotations:
        meta["annotations"] = {k: v for k, v in annotations.items() if k != LAST_APPLIED}
    return {**body, "metadata": meta}


def _key(body: Mapping[str, Any]) -> tuple[str, str]:
    meta = body["metadata"]
    return str(meta["namespace"]), str(meta["name"])


def _encoded(body: Mapping[str, Any]) -> bytes:
    return json.dumps(_slim(body), separators=(",", ":")).encode()


class LastSeen:
    """Thread-safe: the watch handler runs on the event loop, the syncs on threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._bodies: dict[tuple[str, str], bytes] = {}

    def saw(self, body: Mapping[str, Any]) -> None:
        key, data = _key(body), _encoded(body)
        with self._lock:
            self._bodies[key] = data

    def refresh(self, body: Mapping[str, Any]) -> None:
        """Our own write's answer: replaces the hint only if there is one. A write that
        lands just before the TrainingJob's deletion can answer after its DELETED event
        dropped the hint; storing it then would keep a deleted TrainingJob (and take its
        children's news) until the operator restarts. The watch's own event stores a hint
        first (saw) for any TrainingJob a sync writes to. The body is encoded only when
        there is a hint (outside the lock), and stored only if the hint is still there."""
        key = _key(body)
        with self._lock:
            if key not in self._bodies:
                return
        data = _encoded(body)
        with self._lock:
            if key in self._bodies:
                self._bodies[key] = data

    def forget(self, namespace: str, name: str) -> None:
        with self._lock:
            self._bodies.pop((namespace, name), None)

    def get(self, namespace: str, name: str) -> dict[str, Any] | None:
        with self._lock:
            data = self._bodies.get((namespace, name))
        return None if data is None else dict(json.loads(data))

    def knows(self, namespace: str, name: str) -> bool:
        with self._lock:
            return (namespace, name) in self._bodies

    def __len__(self) -> int:
        with self._lock:
            return len(self._bodies)
