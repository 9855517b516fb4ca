"""Counters over a sliding window (decide/monitoring/window.py): increments per pod and
series as Prometheus `increase` computes them, restarts included."""

from __future__ import annotations

import pytest

from perennial_operator.decide.monitoring.samples import Sample, total
from perennial_operator.decide.monitoring.window import (
    MARKS,
    Window,
    advance,
    forget_pods,
    increase,
)

pytestmark = pytest.mark.unit

NAME = "perennial_feedback_total"


def counts(correct: float, incorrect: float = 0.0) -> list[Sample]:
    return [
        Sample(NAME, {"outcome": "correct", "version": "3"}, correct),
        Sample(NAME, {"outcome": "incorrect", "version": "3"}, incorrect),
    ]


def run(
    scrapes: list[tuple[float, dict[str, list[Sample]]]], window: float, fresh: tuple[str, ...] = ()
) -> tuple[Window, float]:
    state = None
    for now, scraped in scrapes:
        state = advance(state, scraped, now, window, fresh)
    assert state is not None
    return state, scrapes[-1][0]


def correct_in(state: Window, now: float, window: float) -> float:
    return total(increase(state, now, window), NAME, outcome="correct")


def test_the_first_scrape_is_only_a_baseline():
    state, now = run([(0, {"a": counts(500)})], 600)
    assert correct_in(state, now, 600) == 0


def test_growth_between_scrapes_is_the_increase():
    state, now = run([(0, {"a": counts(500)}), (60, {"a": counts(540)})], 600)
    assert correct_in(state, now, 600) == 40


def test_a_restarted_pod_counts_from_zero_as_prometheus_increase_does():
    scrapes = [(0, {"a": counts(10)}), (60, {"a": counts(15)}), (120, {"a": counts(3)})]
    state, now = run(scrapes, 600)
    assert correct_in(state, now, 600) == 5 + 3


def test_a_pod_that_started_within_the_window_counts_from_zero():
    scrapes = [(0, {"a": counts(10)}), (60, {"a": counts(12), "b": counts(7)})]
    state, now = run(scrapes, 600, fresh=("b",))
    assert correct_in(state, now, 600) == 2 + 7


def test_a_young_pod_counts_from_zero_on_the_very_first_scrape():
    state, now = run([(0, {"a": counts(10), "b": counts(4)})], 600, fresh=("b",))
    assert correct_in(state, now, 600) == 4


def test_an_old_pod_first_seen_late_is_only_a_baseline():
    scrapes = [(0, {"a": counts(10)}), (60, {"a": counts(12), "b": counts(7)})]
    state, now = run(scrapes, 600)
    assert correct_in(state, now, 600) == 2


def test_a_pod_that_did_not_answer_is_not_counted_twice():
    scrapes = [(0, {"a": counts(10)}), (60, {}), (120, {"a": counts(30)})]
    state, now = run(scrapes, 600)
    assert correct_in(state, now, 600) == 20


def test_a_burst_stops_counting_once_it_leaves_the_window():
    scrapes = [(0, {"a": counts(0)}), (60, {"a": counts(0, 300)})]
    scrapes += [(60 + 60 * i, {"a": counts(100 * i, 300)}) for i in range(1, 12)]
    state, now = run(scrapes, 300)
    window = increase(state, now, 300)
    assert total(window, NAME, outcome="incorrect") == 0
    assert total(window, NAME, outcome="correct") == 500  # five minutes of 100 a minute


def test_marks_stay_bounded_however_many_scrapes():
    state = None
    for i in range(5000):
        state = advance(state, {"a": counts(i)}, float(i), 3600)
    assert state is not None
    assert len(state.marks) <= MARKS + 1
    assert 3600 - 3600 / MARKS - 1 <= correct_in(state, 4999.0, 3600) <= 3600


def test_forgetting_gone_pods_keeps_what_they_counted():
    state, now = run([(0, {"a": counts(1), "b": counts(1)}), (60, {"a": counts(4)})], 600)
    state = forget_pods(state, ["a"])
    assert set(state.last) == {"a"}
    assert correct_in(state, now, 600) == 3
