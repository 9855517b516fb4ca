"""List, then watch, one kind in one namespace (or in all) on a thread of its own; each
event's type and object (a plain dict) go to a callback, on that thread.

Why not kopf for these (issue 18): kopf takes every event of a kind it watches through its
per-object machinery (a worker task and a memory per object, the handlers' filters, the
logging context), whether a handler wants the event or not. The TrainingJobs' Jobs and
pods make most of the events in a burst; here an event costs a JSON decode and the callback.

A watch resumes from the last resourceVersion it saw (bookmarks keep that fresh on a quiet
kind). A 410 Gone means the server no longer has that version: the kind is listed again, and
an object that was there before and is missing from the new list is delivered as DELETED,
with what was kept of it (kopf drops those). Other failures (the API server restarting,
RBAC) are retried with back-off from the version held.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any

import urllib3
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException

from perennial_operator.k8s.backoff import backoff_delay

log = logging.getLogger(__name__)

Deliver = Callable[[str, dict[str, Any]], None]
Keep = Callable[[dict[str, Any]], dict[str, Any]]

BACKOFF = (1.0, 2.0, 5.0, 10.0, 30.0)
# The failures a watch expects now and then (an API error, a dropped connection, a garbled
# line): logged in one line. Anything else is a bug, logged with its traceback.
EXPECTED = (ApiException, urllib3.exceptions.HTTPError, OSError, ValueError)
PAGE = 500  # objects per LIST page
# As kopf's watches (handlers/startup.py, docs/operator.md "Watch settings"): the server ends
# a watch after SERVER_SECONDS; bookmarks come about once a minute while the kind changes
# anywhere, so after SILENT_SECONDS without a byte (the read timeout) the stream is either
# dead or of a quiet kind: watched again, from the version held (watch()).
SERVER_SECONDS = 300
SILENT_SECONDS = 70.0
CONNECT_SECONDS = 10.0


class Gone(Exception):
    """The resourceVersion held is too old: list again."""


class Silent(Exception):
    """Nothing read from the stream for SILENT_SECONDS (its read timed out)."""


def keep_metadata(obj: dict[str, Any]) -> dict[str, Any]:
    """What a DELETED event made up after a relist carries: the object's namespace, name,
    uid and labels, and a pod's node."""
    meta = obj.get("metadata") or {}
    kept: dict[str, Any] = {
        "metadata": {k: meta[k] for k in ("namespace", "name", "uid", "labels") if k in meta}
    }
    node = (obj.get("spec") or {}).get("nodeName")
    if node:
        kept["spec"] = {"nodeName": node}
    return kept


def _key(obj: dict[str, Any]) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


class ListWatch:
    def __init__(
        self,
        api: ApiClient,
        path: str,
        deliver: Deliver,
        *,
        label_selector: str = "",
        keep: Keep = keep_metadata,
    ) -> None:
        self.api, self.path, self.deliver = api, path, deliver
        self.label_selector = label_selector
        self.keep = keep
        self.stopping = threading.Event()
        self._open = threading.Lock()  # stop() against watch() opening and ending its stream
        self._stream: Any = None  # the watch's response while it streams (stop() cuts it)
        self.version = ""  # the last resourceVersion seen ("": list first)
        self._known: dict[tuple[str, str], dict[str, Any]] = {}

    def _get(self, query: dict[str, str]) -> Any:
        if self.label_selector:
            query = {**query, "labelSelector": self.label_selector}
        method, url, headers, body, post = self.api.param_serialize(
            "GET",
            self.path,
            query_params=list(query.items()),
            header_params={"Accept": "application/json"},
            auth_settings=["BearerToken"],
        )
        response: Any = self.api.call_api(
            method, url, headers, body, post, _request_timeout=(CONNECT_SECONDS, SILENT_SECONDS)
        )
        if response.status == 410:
            response.read()
            raise Gone(self.path)
        if response.status >= 300:
            data = response.read()
            raise ApiException(status=response.status, reason=f"{response.reason}: {data[:300]!r}")
        return response

    def list(self) -> str:
        """Every object, page by page, delivered as ADDED; those known before and gone now as
        DELETED. Returns the list's resourceVersion."""
        seen: dict[tuple[str, str], dict[str, Any]] = {}
        token = ""
        while True:
            query = {"limit": str(PAGE), **({"continue": token} if token else {})}
            page = json.loads(self._get(query).read())
            for obj in page.get("items") or []:
                seen[_key(obj)] = self.keep(obj)
                self.deliver("ADDED", obj)
            token = (page.get("metadata") or {}).get("continue") or ""
            if not token:
                break
        for key, kept in self._known.items():
            if key not in seen:
                self.deliver("DELETED", kept)
        self._known = seen
        return str(page["metadata"]["resourceVersion"])

    def _lines(self, response: Any) -> Iterator[bytes]:
        """The stream's lines. Its read timing out raises Silent: only here, so that the same
        timeout raised by a callback (its own request's) is a failure like any other."""
        buffer = b""
        try:
            for chunk in response.response.stream(65536, decode_content=True):
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                yield from (line for line in lines if line.strip())
        except urllib3.exceptions.ReadTimeoutError as exc:
            raise Silent(self.path) from exc
        if buffer.strip():
            yield buffer

    def watch(self) -> None:
        """Deliver events from self.version on until the server ends the watch."""
        query = {
            "watch": "true",
            "resourceVersion": self.version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(SERVER_SECONDS),
        }
        response = self._get(query)
        with self._open:
            self._stream = response
            if self.stopping.is_set():  # stop() came while the request was being made
                response.response.shutdown()
        ended = False
        try:
            for line in self._lines(response):
                if self.stopping.is_set():
                    break
                event = json.loads(line)
                kind, obj = event.get("type"), event.get("object") or {}
                if kind == "ERROR":
                    if obj.get("code") == 410:
                        raise Gone(str(obj.get("message")))
                    raise ApiException(status=int(obj.get("code") or 500), reason=str(obj))
                self.version = str(
                    (obj.get("metadata") or {}).get("resourceVersion") or self.version
                )
                if kind == "BOOKMARK":
                    continue
                key = _key(obj)
                if kind == "DELETED":
                    self._known.pop(key, None)
                else:
                    self._known[key] = self.keep(obj)
                self.deliver(str(kind), obj)
            else:
                ended = True  # the server ended it: the connection can serve the next one
        except Silent:
            # Nothing for SILENT_SECONDS. A quiet kind's watch can: a bookmark carries the last
            # version the API server's cache of that kind has seen, and none older than the
            # version the watch began from is sent (apiserver's cacheWatcher.process), so the
            # watch of a kind nobody has changed since gets none (the pods of a fresh
            # cluster). A dead connection looks the same; for both the remedy is a new watch
            # from the version held, at once: no failure, no back-off.
            log.debug("watch %s: silent for %.0f s; watching again", self.path, SILENT_SECONDS)
        finally:
            with self._open:
                self._stream = None
                cut = self.stopping.is_set()
            if cut or not ended:
                # Left mid-stream (or cut by stop()): the rest must not reach a reuse.
                response.response.close()
            response.response.release_conn()

    def run(self) -> None:
        """List and watch until stopped (a version already set is watched from, unlisted)."""
        failures = 0
        while not self.stopping.is_set():
            try:
                if not self.version:
                    self.version = self.list()
                self.watch()
                failures = 0
            except Gone:
                log.info("%s: resourceVersion %s expired, listing again", self.path, self.version)
                self.version = ""
            except Exception as exc:  # a callback's bug too must not end the watch for good
                if self.stopping.is_set():
                    # Stopped meanwhile (the operator shutting down): what failed is the
                    # shutdown's doing, e.g. a callback onto an event loop already closed.
                    log.debug("watch %s ended while stopping: %r", self.path, exc)
                    return
                failures += 1
                delay = backoff_delay(failures, BACKOFF)
                if isinstance(exc, EXPECTED):
                    log.warning("watch %s: %s; again in %.0f s", self.path, exc, delay)
                else:
                    log.exception("watch %s failed; again in %.0f s", self.path, delay)
                self.stopping.wait(delay)

    def start(self, name: str) -> threading.Thread:
        thread = threading.Thread(target=self.run, name=name, daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        """The thread ends now, not at the next event or when the server ends the watch (up
        to SERVER_SECONDS later): the stream being read is cut (its socket's reading shut,
        so the read in progress returns) and its connection closed, not reused."""
        with self._open:  # held: watch() closes the stream only after the shutdown
            self.stopping.set()
            if self._stream is not None:
                self._stream.response.shutdown()
