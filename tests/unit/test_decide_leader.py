"""Leader election decisions (decide/leader.py): when to create, take, renew or wait."""

from __future__ import annotations

import pytest

from perennial_operator.decide.leader import (
    Record,
    Seen,
    Step,
    Timings,
    decide,
    observe,
    transitions_after,
    valid_until,
)

pytestmark = pytest.mark.unit


def held(by: str, rv: str = "1", duration: float = 15.0, transitions: int = 0) -> Record:
    return Record(holder=by, lease_duration=duration, resource_version=rv, transitions=transitions)


def test_no_lease_is_created() -> None:
    assert decide(None, "a", now=0.0) is Step.CREATE


def test_our_own_lease_is_renewed() -> None:
    assert decide(Seen(held("a"), at=0.0), "a", now=100.0) is Step.RENEW


def test_a_live_lease_of_another_is_waited_for_its_full_duration_from_when_we_saw_it() -> None:
    # The remote renewTime is never compared with our clock: only our observation counts.
    seen = Seen(held("b", duration=15.0), at=100.0)
    assert decide(seen, "a", now=100.0) is Step.WAIT
    assert decide(seen, "a", now=114.9) is Step.WAIT
    assert decide(seen, "a", now=115.0) is Step.TAKE


def test_a_released_lease_is_taken_at_once() -> None:
    assert decide(Seen(held(""), at=100.0), "a", now=100.0) is Step.TAKE


def test_a_renewal_by_the_holder_restarts_the_wait() -> None:
    first = observe(None, held("b", rv="1"), now=100.0)
    same = observe(first, held("b", rv="1"), now=110.0)
    assert same == first  # unchanged: the clock keeps running from the first sight
    renewed = observe(same, held("b", rv="2"), now=112.0)
    assert renewed is not None and renewed.at == 112.0
    assert decide(renewed, "a", now=120.0) is Step.WAIT
    assert decide(renewed, "a", now=127.0) is Step.TAKE


def test_a_deleted_lease_is_forgotten() -> None:
    assert observe(Seen(held("b"), at=1.0), None, now=2.0) is None


def test_transitions_count_changes_of_holder() -> None:
    assert transitions_after(None, "a") == 0
    assert transitions_after(held("a", transitions=4), "a") == 4
    assert transitions_after(held("b", transitions=4), "a") == 5


def test_the_holder_stops_before_another_may_take_over() -> None:
    timings = Timings(lease_duration=15.0, renew_deadline=10.0, retry_period=2.0)
    renew_started = 50.0
    # The other replica sees the renewal no earlier than it was sent.
    other_seen_at = renew_started
    assert valid_until(renew_started, timings) < other_seen_at + timings.lease_duration


@pytest.mark.parametrize(
    ("timings", "problem"),
    [
        (Timings(10.0, 10.0, 2.0), "shorter than the lease duration"),
        (Timings(10.0, 12.0, 2.0), "shorter than the lease duration"),
        (Timings(15.0, 2.0, 2.0), "1.2 x the retry period"),
        (Timings(15.0, 10.0, 0.0), "retry period must be positive"),
    ],
)
def test_unsafe_timings_are_refused(timings: Timings, problem: str) -> None:
    assert any(problem in p for p in timings.problems())


def test_the_defaults_are_client_gos() -> None:
    assert Timings() == Timings(15.0, 10.0, 2.0)
    assert Timings().problems() == []
