"""ListWatch.run()'s decisions about a failure (k8s/watch.py): retried and logged while the
watch runs; once it was told to stop (the operator's cleanup), the end of the thread, quietly.
The list and the watch are scripted here; tests/integration/test_k8s_watch.py runs them on
the real API server."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, cast

import pytest

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
