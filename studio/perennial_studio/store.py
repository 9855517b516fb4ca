"""The in-memory view of the cluster: one dict per kind, fed by the reflectors.

Writers (the watch threads) replace whole entries under a lock; readers take a `Snapshot`,
a frozen copy of the dicts made once per revision, so a page renders from one consistent
state without holding the lock. Events are history: an Event the API server expires (its
TTL is an hour by default) stays here, up to `max_events`, oldest dropped first.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

Obj = dict[str, Any]
Key = tuple[str, str]  # (namespace or "", name); Events: ("", uid)

KINDS = (
    "TrainingJob",
    "ModelVersion",
    "InferenceService",
    "RetrainPolicy",
    "ComputePool",
    "Job",
    "Pod",
    "Deployment",
    "Node",
    "Event",
)


def key_of(kind: str, obj: Mapping[str, Any]) -> Key:
    meta = obj.get("metadata") or {}
    if kind == "Event":
        return ("", str(meta.get("uid") or f"{meta.get('namespace')}/{meta.get('name')}"))
    return (str(meta.get("namespace") or ""), str(meta.get("name") or ""))


@dataclass
class KindState:
    objects: dict[Key, Obj] = field(default_factory=dict)
    revision: int = 0
    scopes: set[str | None] = field(default_factory=lambda: {None})  # namespaces watched
    listed: set[str | None] = field(default_factory=set)
    error: str = ""

    @property
    def synced(self) -> bool:
        return self.scopes <= self.listed


class Store:
    def __init__(self, max_events: int = 5000) -> None:
        self._lock = threading.Lock()
        self._kinds = {kind: KindState() for kind in KINDS}
        self._events: OrderedDict[Key, Obj] = OrderedDict()  # by arrival, for the cap
        self._max_events = max_events
        self._snapshot: Snapshot | None = None
        self._kinds["Event"].objects = self._events  # the snapshot copies it

    # --- writers ------------------------------------------------------------------------

    def watch_scopes(self, kind: str, scopes: Iterable[str | None]) -> None:
        """The namespaces (None: all) whose LIST must arrive before `kind` counts as synced."""
        with self._lock:
            self._kinds[kind].scopes = set(scopes)

    def replace(self, kind: str, objects: Iterable[Obj], scope: str | None = None) -> None:
        """A fresh LIST of one scope (a namespace, or None for all): its whole content.
        Events are added to the history instead."""
        with self._lock:
            state = self._kinds[kind]
            if kind == "Event":
                for obj in objects:
                    self._put_event(obj)
            else:
                kept = {
                    k: o for k, o in state.objects.items() if scope is not None and k[0] != scope
                }
                state.objects = kept | {key_of(kind, o): o for o in objects}
            state.listed.add(scope)
            state.error = ""
            self._bump(state)

    def upsert(self, kind: str, obj: Obj) -> None:
        with self._lock:
            state = self._kinds[kind]
            if kind == "Event":
                self._put_event(obj)
            else:
                state.objects[key_of(kind, obj)] = obj
            self._bump(state)

    def delete(self, kind: str, obj: Obj) -> None:
        if kind == "Event":
            return  # expired by the API server's TTL: still history
        with self._lock:
            state = self._kinds[kind]
            if state.objects.pop(key_of(kind, obj), None) is not None:
                self._bump(state)

    def failed(self, kind: str, error: str) -> None:
        with self._lock:
            state = self._kinds[kind]
            if state.error != error:
                state.error = error
                self._bump(state)

    def _put_event(self, obj: Obj) -> None:
        key = key_of("Event", obj)
        self._events.pop(key, None)
        self._events[key] = obj
        while len(self._events) > self._max_events:
            self._events.popitem(last=False)

    def _bump(self, state: KindState) -> None:
        state.revision += 1
        self._snapshot = None

    # --- readers ------------------------------------------------------------------------

    def revision(self, kinds: Iterable[str] = KINDS) -> tuple[int, ...]:
        with self._lock:
            return tuple(self._kinds[k].revision for k in kinds)

    def snapshot(self) -> Snapshot:
        with self._lock:
            if self._snapshot is None:
                self._snapshot = Snapshot(
                    {k: dict(s.objects) for k, s in self._kinds.items()},
                    {k: (s.synced, s.error) for k, s in self._kinds.items()},
                )
            return self._snapshot

    def counts(self) -> dict[str, int]:
        with self._lock:
            return {k: len(s.objects) for k, s in self._kinds.items()}


class Snapshot:
    """One consistent state; indexes are built on first use and kept with it."""

    def __init__(self, objects: dict[str, dict[Key, Obj]], health: dict[str, tuple[bool, str]]):
        self._objects = objects
        self.health = health
        self._indexes: dict[tuple[str, str], dict[Any, list[Obj]]] = {}
        self._index_lock = threading.RLock()
        self._memo: dict[str, Any] = {}

    @property
    def synced(self) -> bool:
        return all(synced for synced, _ in self.health.values())

    def errors(self) -> dict[str, str]:
        return {k: error for k, (_, error) in self.health.items() if error}

    def memo(self, key: str, build: Callable[[], Any]) -> Any:
        """A value derived from this snapshot, built once (the timeline, per-model groups)."""
        with self._index_lock:
            if key not in self._memo:
                self._memo[key] = build()
            return self._memo[key]

    def items(self, kind: str) -> list[Obj]:
        return list(self._objects[kind].values())

    def get(self, kind: str, namespace: str | None, name: str) -> Obj | None:
        return self._objects[kind].get((namespace or "", name))

    def index(self, kind: str, name: str, key: Callable[[Obj], Any]) -> dict[Any, list[Obj]]:
        """Objects of `kind` grouped by key(obj) (None keys left out); `name` caches it."""
        with self._index_lock:
            found = self._indexes.get((kind, name))
            if found is None:
                found = {}
                for obj in self._objects[kind].values():
                    k = key(obj)
                    if k is not None:
                        found.setdefault(k, []).append(obj)
                self._indexes[(kind, name)] = found
            return found

    def labelled(self, kind: str, label: str, namespace: str, value: str) -> list[Obj]:
        """Objects of `kind` in `namespace` whose label `label` is `value`."""

        def key(obj: Obj) -> Any:
            meta = obj["metadata"]
            found = (meta.get("labels") or {}).get(label)
            return None if found is None else (meta.get("namespace") or "", found)

        return self.index(kind, f"label:{label}", key).get((namespace, value), [])

    def events_for(self, kind: str, namespace: str | None, name: str) -> list[Obj]:
        """Events about one object, newest first."""

        def key(event: Obj) -> Any:
            return (event.get("kind"), event.get("namespace") or "", event.get("name"))

        found = self.index("Event", "involved", key).get((kind, namespace or "", name), [])
        return sorted(found, key=lambda e: e.get("time") or "", reverse=True)
