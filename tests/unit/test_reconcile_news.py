"""NewsBatch: news of one key within its period is handed out once, after the period."""

from __future__ import annotations

import pytest

from perennial_operator.reconcile.news import NewsBatch

pytestmark = pytest.mark.unit


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_news_joins_the_period_its_key_began_and_is_handed_out_once_when_it_ends() -> None:
    clock = Clock()
    news = NewsBatch[str](0.5, clock)
    news.add("a")
    clock.now += 0.3
    news.add("a")  # joins: does not push the end further
    news.add("b")
    assert news.take_due() == []
    clock.now += 0.2  # a's period is over, b's (began 0.3 s later) not yet
    assert news.take_due() == ["a"]
    assert news.take_due() == []  # handed out once
    assert len(news) == 1
    news.add("a")  # later news starts a new period
    clock.now += 0.5
    assert news.take_due() == ["b", "a"]  # in the order their news began
    assert len(news) == 0  # nothing kept for keys without news


def test_a_forgotten_key_is_not_handed_out_and_a_zero_period_hands_out_at_once() -> None:
    clock = Clock()
    news = NewsBatch[str](0.0, clock)
    news.add("gone")
    news.forget("gone")
    news.forget("never-added")
    news.add("a")
    assert news.take_due() == ["a"]
    with pytest.raises(ValueError, match="period"):
        NewsBatch[str](-1.0, clock)
