"""The operator's logging: kopf's per-event INFO lines off by default, its warnings kept."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import kopf
import pytest

from perennial_operator.main import configure_logging

pytestmark = pytest.mark.unit

BODY = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "ns"}}


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    # kopf.configure changes the root logger, the asyncio logger and our levels: put back
    # every one, so no later test logs differently.
    names = ("", "asyncio", "kopf.objects", "kubernetes")
    saved = [
        (lg, lg.level, list(lg.handlers), lg.propagate) for lg in map(logging.getLogger, names)
    ]
    yield
    for lg, level, handlers, propagate in saved:
        lg.setLevel(level)
        lg.handlers[:] = handlers
        lg.propagate = propagate


def object_logger() -> logging.LoggerAdapter[logging.Logger]:
    # kopf's own per-object logger, the one that says "Handler 'x' succeeded."
    return kopf.LocalObjectLogger(body=kopf.Body(BODY), settings=kopf.OperatorSettings())


def said(caplog: pytest.LogCaptureFixture) -> list[tuple[str, str]]:
    return [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "kopf.objects"]


def test_by_default_kopfs_per_event_successes_are_not_logged_but_its_warnings_are(caplog):
    configure_logging(verbose=False, debug=False)
    object_logger().info("Handler 'reconcile_retrainpolicy' succeeded.")
    object_logger().warning("Handler 'reconcile_retrainpolicy' failed temporarily: boom")
    assert said(caplog) == [
        ("WARNING", "Handler 'reconcile_retrainpolicy' failed temporarily: boom")
    ]


@pytest.mark.parametrize("flag", ["verbose", "debug"])
def test_verbose_or_debug_brings_them_back(caplog, flag):
    configure_logging(verbose=flag == "verbose", debug=flag == "debug")
    object_logger().info("Handler 'reconcile_retrainpolicy' succeeded.")
    assert said(caplog) == [("INFO", "Handler 'reconcile_retrainpolicy' succeeded.")]
