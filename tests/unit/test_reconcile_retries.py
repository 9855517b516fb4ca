"""Retries of a failed TrainingJob sync (reconcile/retries.py): growing delays per key,
forgotten on success, nothing kept for keys that do not fail."""

from __future__ import annotations

import pytest

from perennial_operator.reconcile.retries import Retries

pytestmark = pytest.mark.unit


def test_delays_grow_per_key_up_to_the_last_and_a_success_forgets_the_key():
    now = [0.0]
    retries = Retries[str]((1.0, 5.0, 30.0), lambda: now[0])
    assert [retries.failed("a") for _ in range(4)] == [1.0, 5.0, 30.0, 30.0]
    assert retries.failed("b") == 1.0  # each key its own count
    assert retries.due() == []
    now[0] = 1.0
    assert retries.due() == ["b"]  # a's last failure was at 0 + 30 s
    now[0] = 30.0
    assert sorted(retries.due()) == ["a", "b"]
    retries.succeeded("a")
    retries.forget("b")
    assert (len(retries), retries.due()) == (0, [])
    assert retries.failed("a") == 1.0  # a new failure starts over


def test_no_delays_is_refused():
    with pytest.raises(ValueError, match="at least one delay"):
        Retries[str]((), lambda: 0.0)
