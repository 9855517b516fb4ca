"""Per-object locks: one holder per key at a time, and nothing left once nobody holds one."""

from __future__ import annotations

import threading

import pytest

from perennial_operator.reconcile.locks import KeyedLocks

pytestmark = pytest.mark.unit


def test_one_holder_per_key_and_other_keys_are_free():
    locks = KeyedLocks()
    inside, release = threading.Event(), threading.Event()
    order: list[str] = []

    def first() -> None:
        with locks.hold("TrainingJob/ns/a"):
            order.append("first in")
            inside.set()
            release.wait(5)
            order.append("first out")

    def second() -> None:
        with locks.hold("TrainingJob/ns/a"):
            order.append("second in")

    one = threading.Thread(target=first)
    one.start()
    assert inside.wait(5)
    two = threading.Thread(target=second)
    two.start()
    with locks.hold("TrainingJob/ns/b"):  # another object is not held up
        order.append("other key")
    release.set()
    one.join(5)
    two.join(5)
    assert order == ["first in", "other key", "first out", "second in"]


def test_a_lock_nobody_holds_is_forgotten():
    locks = KeyedLocks()
    with locks.hold("x"), locks.hold("y"):
        assert len(locks) == 2
    assert len(locks) == 0
    with pytest.raises(RuntimeError), locks.hold("x"):
        raise RuntimeError("a failed reconcile")
    assert len(locks) == 0
