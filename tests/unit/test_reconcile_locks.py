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


def _queue_behind_a_running_sync(locks: KeyedLocks, waiters: int, fail: bool) -> list[bool]:
    """One sync runs; `waiters` more calls arrive while it does; returns who had to sync."""
    inside, release = threading.Event(), threading.Event()
    ran: list[bool] = []

    def running() -> None:
        try:
            with locks.once("k") as run:
                ran.append(run)
                inside.set()
                release.wait(5)
                if fail:
                    raise RuntimeError("the API server said no")
        except RuntimeError:
            pass

    def waiting() -> None:
        with locks.once("k") as run:
            ran.append(run)

    first = threading.Thread(target=running)
    first.start()
    inside.wait(5)
    others = [threading.Thread(target=waiting) for _ in range(waiters)]
    for thread in others:
        thread.start()
    until_waiting = 50
    while len(locks) and locks._entries["k"].users < waiters + 1 and until_waiting:
        threading.Event().wait(0.01)
        until_waiting -= 1
    release.set()
    for thread in [first, *others]:
        thread.join(5)
    return ran


def test_calls_queued_behind_a_sync_are_served_by_one_more_sync():
    # The running sync began before they arrived: it cannot have seen their news, so exactly
    # one of them syncs again; that one began after all of them, so the rest skip.
    ran = _queue_behind_a_running_sync(KeyedLocks(), waiters=5, fail=False)
    assert ran[0] is True
    assert sorted(ran[1:]) == [False] * 4 + [True]
    assert ran[1] is True  # the first waiter in syncs, the later ones find themselves covered


def test_a_failed_sync_covers_nothing():
    ran = _queue_behind_a_running_sync(KeyedLocks(), waiters=2, fail=True)
    assert ran == [True, True, False]


def test_calls_one_after_another_all_sync_and_leave_nothing_behind():
    locks = KeyedLocks()
    for _ in range(3):
        with locks.once("k") as run:
            assert run
    assert len(locks) == 0
