"""List once, then watch: one thread per (kind, namespace) keeps the Store current.

A watch resumes from the last resourceVersion it saw (bookmarks keep that fresh on quiet
kinds); a 410 Gone, or an ERROR event with code 410, means the server no longer has that
version, so the kind is listed again. Other failures (the API server restarting, a CRD not
installed yet, RBAC) are retried with back-off and shown on the pages meanwhile.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import urllib3

from perennial_studio.kube import ApiError, Kube, Resource
from perennial_studio.project import project
from perennial_studio.store import Store

log = logging.getLogger("perennial_studio.reflector")
BACKOFF = (1.0, 2.0, 5.0, 10.0, 30.0)
PAGE = 500  # items per LIST page
WATCH_SECONDS = 290  # the server ends a watch after this; we resume from the last version


@dataclass(frozen=True)
class Watched:
    resource: Resource
    label_selector: str = ""
    field_selector: str = ""


class Gone(Exception):
    """The resourceVersion we hold is too old: list again."""


class Reflector:
    def __init__(
        self,
        kube: Kube,
        store: Store,
        watched: Watched,
        namespace: str | None,
        stop: threading.Event,
        on_list: Callable[[str], None] | None = None,
    ) -> None:
        self.kube, self.store, self.watched = kube, store, watched
        self.namespace = namespace
        self.stop = stop
        self.on_list = on_list or (lambda kind: None)
        self.kind = watched.resource.kind

    def _query(self) -> dict[str, Any]:
        return {
            "labelSelector": self.watched.label_selector,
            "fieldSelector": self.watched.field_selector,
        }

    def list(self) -> str:
        """Every object, page by page; returns the list's resourceVersion."""
        path = self.watched.resource.path(self.namespace)
        items: list[dict[str, Any]] = []
        token = ""
        while True:
            page = self.kube.get(path, {**self._query(), "limit": PAGE, "continue": token})
            self.on_list(self.kind)
            items += [project(self.kind, o) for o in page.get("items") or []]
            token = (page.get("metadata") or {}).get("continue") or ""
            if not token:
                self.store.replace(self.kind, items, scope=self.namespace)
                return str(page["metadata"]["resourceVersion"])

    def watch(self, version: str) -> str:
        """Apply events until the server ends the watch; returns the last version seen."""
        query = {
            **self._query(),
            "resourceVersion": version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": WATCH_SECONDS,
        }
        path = self.watched.resource.path(self.namespace)
        for event in self.kube.watch(path, query, timeout=WATCH_SECONDS + 30):
            if self.stop.is_set():
                break
            kind, obj = event.get("type"), event.get("object") or {}
            if kind == "ERROR":
                if obj.get("code") == 410:
                    raise Gone(str(obj.get("message")))
                raise ApiError(int(obj.get("code") or 500), str(obj.get("reason")), str(obj))
            version = str((obj.get("metadata") or {}).get("resourceVersion") or version)
            if kind == "BOOKMARK":
                continue
            if kind == "DELETED":
                self.store.delete(self.kind, project(self.kind, obj))
            else:
                self.store.upsert(self.kind, project(self.kind, obj))
        return version

    def run(self) -> None:
        failures, version = 0, ""
        while not self.stop.is_set():
            try:
                if not version:
                    version = self.list()
                version = self.watch(version)
                failures = 0
            except Gone:
                log.info("%s: resourceVersion %s expired, listing again", self.kind, version)
                version = ""
            except (ApiError, urllib3.exceptions.HTTPError, OSError, ValueError) as exc:
                if isinstance(exc, ApiError) and exc.status == 410:
                    version = ""
                    continue
                failures += 1
                self.store.failed(self.kind, f"{type(exc).__name__}: {exc}"[:300])
                delay = BACKOFF[min(failures, len(BACKOFF)) - 1]
                log.warning("%s: %s; retrying in %.0fs", self.kind, exc, delay)
                self.stop.wait(delay)

    def start(self) -> threading.Thread:
        name = f"watch-{self.kind}-{self.namespace or 'all'}"
        thread = threading.Thread(target=self.run, name=name, daemon=True)
        thread.start()
        return thread
