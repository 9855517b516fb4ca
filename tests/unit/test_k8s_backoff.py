"""The shared back-off ladder: the n-th failure in a row waits the n-th rung, then the last."""

from __future__ import annotations

import pytest

from perennial_operator.k8s.backoff import backoff_delay

pytestmark = pytest.mark.unit

LADDER = (1.0, 2.0, 5.0)


@pytest.mark.parametrize(
    ("failures", "expected"),
    [(1, 1.0), (2, 2.0), (3, 5.0), (4, 5.0), (100, 5.0)],
    ids=["first-rung", "second-rung", "last-rung", "beyond-the-ladder", "far-beyond"],
)
def test_delay(failures, expected):
    assert backoff_delay(failures, LADDER) == expected


def test_one_rung():
    assert backoff_delay(1, (7.0,)) == backoff_delay(9, (7.0,)) == 7.0


@pytest.mark.parametrize(("failures", "ladder"), [(0, LADDER), (-1, LADDER), (1, ())])
def test_no_failure_or_no_ladder_is_a_mistake(failures, ladder):
    with pytest.raises(ValueError):
        backoff_delay(failures, ladder)
