"""try_sync: the one place a TrainingJob's or ModelVersion's failed sync is logged and its
retry scheduled."""

from __future__ import annotations

import logging

import kopf
import pytest

from perennial_operator.handlers.retrying import try_sync
from perennial_operator.reconcile.retries import Retries

pytestmark = pytest.mark.unit

KEY = ("ml", "churn-v3")
LOG = logging.getLogger("test.retrying")


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def fail(exc: Exception):
    def sync() -> None:
        raise exc

    return sync


def test_a_failure_is_retried_after_the_delay_and_a_success_clears_it(caplog):
    clock = Clock()
    retries = Retries[tuple[str, str]]((1.0, 5.0), clock)
    with caplog.at_level(logging.WARNING, logger="test.retrying"):
        try_sync(retries, LOG, "ModelVersion", KEY, fail(RuntimeError("HTTP 500")))
    assert "ModelVersion ml/churn-v3: HTTP 500; trying again in 1s" in caplog.text
    assert list(retries.due()) == []
    clock.now += 1.0
    assert list(retries.due()) == [KEY]
    try_sync(retries, LOG, "ModelVersion", KEY, lambda: None)
    clock.now += 60.0
    assert list(retries.due()) == []  # done: nothing left to retry


def test_a_refusal_is_not_retried_and_says_what_happens_instead(caplog):
    clock = Clock()
    retries = Retries[tuple[str, str]]((1.0, 5.0), clock)
    try_sync(retries, LOG, "TrainingJob", KEY, fail(RuntimeError("HTTP 503")))
    with caplog.at_level(logging.ERROR, logger="test.retrying"):
        refused = kopf.PermanentError("rejected: spec.x invalid")
        try_sync(retries, LOG, "TrainingJob", KEY, fail(refused), after_refusal="; later")
    assert "TrainingJob ml/churn-v3: rejected: spec.x invalid; later" in caplog.text
    clock.now += 60.0
    assert list(retries.due()) == []  # the earlier failure's retry is forgotten too
