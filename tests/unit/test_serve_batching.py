"""The micro-batcher's policy, on a fake event loop (no clocks, no sleeps)."""

from __future__ import annotations

import numpy as np
import pytest

from perennial_runtime.serve.batching import MicroBatcher
from perennial_runtime.serve.validation import Rows

pytestmark = pytest.mark.unit


class FakeHandle:
    def __init__(self, loop, when, callback):
        self.loop, self.when, self.callback, self.cancelled = loop, when, callback, False

    def cancel(self):
        self.cancelled = True


class FakeLoop:
    """call_soon runs at the end of the current turn; call_later when time is advanced."""

    def __init__(self):
        self.now = 100.0
        self.soon: list[FakeHandle] = []
        self.later: list[FakeHandle] = []

    def time(self):
        return self.now

    def call_soon(self, callback):
        handle = FakeHandle(self, self.now, callback)
        self.soon.append(handle)
        return handle

    def call_later(self, delay, callback):
        handle = FakeHandle(self, self.now + delay, callback)
        self.later.append(handle)
        return handle

    def end_turn(self):
        ready, self.soon = self.soon, []
        for handle in ready:
            if not handle.cancelled:
                handle.callback()

    def advance(self, seconds):
        self.now += seconds
        due = [h for h in self.later if h.when <= self.now and not h.cancelled]
        self.later = [h for h in self.later if h not in due]
        for handle in due:
            handle.callback()


def rows(n):
    return Rows(np.arange(n, dtype=float).reshape(n, 1), None)


@pytest.fixture
def setup():
    loop = FakeLoop()
    calls: list[int] = []

    def predict(numeric, categorical, proba):
        calls.append(len(numeric))
        return numeric[:, 0] * 10, None

    batcher = MicroBatcher(predict, loop, max_batch_size=8, max_latency=0.002)
    return loop, batcher, calls


def test_a_lone_request_runs_at_the_end_of_the_turn_without_waiting(setup):
    loop, batcher, calls = setup
    answers = []
    batcher.submit(rows(1), False, answers.append)
    assert calls == []
    loop.end_turn()  # no time has passed: the bound is never waited for
    assert calls == [1] and answers[0].labels.tolist() == [0.0]
    assert all(h.cancelled for h in loop.later)


def test_requests_read_in_the_same_turn_share_one_predict(setup):
    loop, batcher, calls = setup
    answers = []
    for n in (1, 2, 3):
        batcher.submit(rows(n), False, answers.append)
    loop.end_turn()
    assert calls == [6]
    assert [a.labels.tolist() for a in answers] == [[0.0], [0.0, 10.0], [0.0, 10.0, 20.0]]


def test_a_full_batch_runs_at_once(setup):
    loop, batcher, calls = setup
    batcher.submit(rows(5), False, lambda _: None)
    batcher.submit(rows(3), False, lambda _: None)
    assert calls == [8]  # reached max_batch_size: no end of turn needed
    batcher.submit(rows(20), False, lambda _: None)
    assert calls == [8, 20]  # one request larger than the batch runs alone, unsplit


def test_a_half_read_request_is_waited_for_at_most_the_bound(setup):
    loop, batcher, calls = setup
    batcher.reading_started()  # another client's body is still arriving
    batcher.submit(rows(1), False, lambda _: None)
    loop.end_turn()
    assert calls == []
    loop.advance(0.0019)
    assert calls == []
    loop.advance(0.0002)  # the bound (2 ms) since the first request arrived
    assert calls == [1]


def test_the_half_read_request_joins_when_it_arrives_in_time(setup):
    loop, batcher, calls = setup
    batcher.reading_started()
    batcher.submit(rows(1), False, lambda _: None)
    loop.end_turn()
    loop.advance(0.001)
    batcher.reading_finished()
    batcher.submit(rows(2), False, lambda _: None)
    loop.end_turn()
    assert calls == [3]


def test_a_failing_predict_reaches_every_waiting_request(setup):
    loop, _, _ = setup

    def broken(numeric, categorical, proba):
        raise RuntimeError("boom")

    batcher = MicroBatcher(broken, loop, max_batch_size=8, max_latency=0.002)
    answers = []
    batcher.submit(rows(1), False, answers.append)
    batcher.submit(rows(1), False, answers.append)
    loop.end_turn()
    assert [type(a) for a in answers] == [RuntimeError, RuntimeError]
