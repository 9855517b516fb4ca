"""ListWatch.run()'s decisions about a failure (k8s/watch.py): retried and logged while the
watch runs; once it was told to stop (the operator's cleanup), the end of the thread, quietly;
a silent stream (its read timed out) watched again at once, but a callback's own timeout is a
failure like any other. The list and the watch, or the streams, are scripted here;
tests/integration/test_k8s_watch.py runs them on the real API server."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from typing import Any, cast

import pytest
import urllib3

from perennial_operator.k8s import watch as watch_module
from perennial_operator.k8s.watch import ListWatch

pytestmark = pytest.mark.unit


class Scripted(ListWatch):
    """Each watch() runs the next step of a script instead of reading a stream."""

    def __init__(self, *steps: Any) -> None:
        super().__init__(cast(Any, None), "/api/v1/pods", lambda kind, obj: None)
        self.steps = list(steps)
        self.watched = 0

    def list(self) -> str:
        return "1"

    def watch(self) -> None:
        self.watched += 1
        self.steps.pop(0)(self)


def _closed_loop() -> asyncio.AbstractEventLoop:
    loop = asyncio.new_event_loop()
    loop.close()
    return loop


def test_a_failure_after_stop_ends_the_thread_without_a_complaint(caplog):
    """The shutdown's race: the cleanup stops the watch and the loop closes while an event is
    on its way to it; handing it over then raises, and that is no failure to report."""
    loop = _closed_loop()

    def cleanup_meanwhile(watch: ListWatch) -> None:
        watch.stop()
        loop.call_soon_threadsafe(print)  # RuntimeError: Event loop is closed

    watch = Scripted(cleanup_meanwhile)
    with caplog.at_level(logging.DEBUG, logger=watch_module.__name__):
        watch.run()
    assert watch.watched == 1
    assert [r.levelno for r in caplog.records] == [logging.DEBUG]
    assert "ended while stopping" in caplog.records[0].getMessage()


def test_a_failure_while_running_is_logged_with_its_traceback_and_retried(caplog, monkeypatch):
    monkeypatch.setattr(watch_module, "BACKOFF", (0.01,))
    loop = _closed_loop()

    def fail(watch: ListWatch) -> None:
        loop.call_soon_threadsafe(print)

    def then_stop(watch: ListWatch) -> None:
        watch.stop()

    watch = Scripted(fail, then_stop)
    with caplog.at_level(logging.DEBUG, logger=watch_module.__name__):
        watch.run()
    assert watch.watched == 2
    errors = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(errors) == 1
    assert errors[0].levelno == logging.ERROR and errors[0].exc_info is not None


def _timeout() -> urllib3.exceptions.ReadTimeoutError:
    return urllib3.exceptions.ReadTimeoutError(cast(Any, None), "/", "Read timed out.")


class Stream:
    """A watch's response: its lines (an exception in their place is raised there)."""

    status, reason = 200, "OK"

    def __init__(self, *items: bytes | Exception) -> None:
        self.items = items
        self.response = self

    def stream(self, amt: int, decode_content: bool) -> Iterator[bytes]:
        for item in self.items:
            if isinstance(item, Exception):
                raise item
            yield item

    def shutdown(self) -> None:
        pass

    def close(self) -> None:
        pass

    def release_conn(self) -> None:
        pass


class Api:
    """An ApiClient that answers each watch request with the next Stream and keeps the
    resourceVersion each began from."""

    def __init__(self, *streams: Stream) -> None:
        self.streams = list(streams)
        self.versions: list[str] = []

    def param_serialize(self, method: str, path: str, **kw: Any) -> tuple[Any, ...]:
        return method, dict(kw["query_params"]), {}, None, []

    def call_api(self, method: str, query: dict[str, str], *_: Any, **__: Any) -> Stream:
        self.versions.append(query["resourceVersion"])
        return self.streams.pop(0)


def _event(kind: str, name: str, version: str) -> bytes:
    obj = {"metadata": {"namespace": "ml", "name": name, "resourceVersion": version}}
    return json.dumps({"type": kind, "object": obj}).encode() + b"\n"


def test_a_silent_stream_is_watched_again_at_once_without_a_complaint(caplog, monkeypatch):
    monkeypatch.setattr(watch_module, "BACKOFF", (60.0,))  # a back-off would hang the test
    api = Api(Stream(_event("ADDED", "a", "6"), _timeout()), Stream(_event("ADDED", "b", "7")))
    seen: list[str] = []

    def deliver(kind: str, obj: dict[str, Any]) -> None:
        seen.append(obj["metadata"]["name"])
        if len(seen) == 2:
            watch.stop()

    watch = ListWatch(cast(Any, api), "/api/v1/pods", deliver)
    watch.version = "5"
    with caplog.at_level(logging.DEBUG, logger=watch_module.__name__):
        watch.run()
    assert seen == ["a", "b"] and api.versions == ["5", "6"]
    assert [r.levelno for r in caplog.records] == [logging.DEBUG]
    assert "silent for" in caplog.records[0].getMessage()


def test_a_callbacks_own_read_timeout_is_a_failure_not_a_silent_stream(caplog, monkeypatch):
    """A callback whose own API request timed out raises the same ReadTimeoutError as a
    silent stream: a failure of the watch all the same (logged, counted, backed off). The
    watch resumes from the failed event's version, as after any failed delivery: that event
    is not delivered again, and none after it is missed."""
    monkeypatch.setattr(watch_module, "BACKOFF", (0.01,))
    api = Api(
        Stream(_event("ADDED", "a", "6"), _event("ADDED", "b", "7")),
        Stream(_event("ADDED", "b", "7"), _event("ADDED", "c", "8")),  # from 6 on
    )
    seen: list[str] = []

    def deliver(kind: str, obj: dict[str, Any]) -> None:
        seen.append(obj["metadata"]["name"])
        if obj["metadata"]["name"] == "a":
            raise _timeout()  # the callback's own request
        if obj["metadata"]["name"] == "c":
            watch.stop()

    watch = ListWatch(cast(Any, api), "/api/v1/pods", deliver)
    watch.version = "5"
    with caplog.at_level(logging.DEBUG, logger=watch_module.__name__):
        watch.run()
    assert seen == ["a", "b", "c"] and api.versions == ["5", "6"]
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "again in 0 s" in warnings[0].getMessage()
    assert not any("silent for" in r.getMessage() for r in caplog.records)
