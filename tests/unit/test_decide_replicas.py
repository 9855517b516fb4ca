"""Replica-ratio arithmetic of a canary: a table of known splits, then every weight for
every replica count up to 20 against the rules the docstring promises."""

from __future__ import annotations

import pytest

from perennial_operator.decide.rollout.replicas import Split, canary_share, canary_split

pytestmark = pytest.mark.unit

CASES = [
    # id, total, weight, (stable, canary)
    ("zero-replicas", 0, 50, (0, 0)),
    ("one-replica-10pct-keeps-stable", 1, 10, (1, 1)),
    ("one-replica-100pct", 1, 100, (0, 1)),
    ("two-replicas-10pct", 2, 10, (1, 1)),
    ("two-replicas-50pct", 2, 50, (1, 1)),
    ("three-replicas-50pct-rounds-up", 3, 50, (1, 2)),
    ("four-replicas-25pct", 4, 25, (3, 1)),
    ("four-replicas-50pct", 4, 50, (2, 2)),
    ("four-replicas-75pct", 4, 75, (1, 3)),
    ("four-replicas-99pct-keeps-one-stable", 4, 99, (1, 4)),
    ("ten-replicas-10pct", 10, 10, (9, 1)),
    ("ten-replicas-15pct", 10, 15, (8, 2)),
    ("ten-replicas-100pct", 10, 100, (0, 10)),
    ("hundred-replicas-1pct", 100, 1, (99, 1)),
    ("weight-above-100-clamped", 5, 150, (0, 5)),
]


@pytest.mark.parametrize(
    ("total", "weight", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_known_splits(total: int, weight: int, expected: tuple[int, int]) -> None:
    assert canary_split(total, weight) == Split(*expected)


@pytest.mark.parametrize("total", range(1, 21))
def test_every_weight_for_every_replica_count(total: int) -> None:
    previous = 0
    for weight in range(1, 101):
        split = canary_split(total, weight)
        assert 1 <= split.canary <= total, (weight, split)
        assert split.canary >= previous, "the canary never shrinks as the weight grows"
        previous = split.canary
        if weight < 100:
            assert split.stable >= 1, "the old version answers until the last step"
            assert split.stable + split.canary <= total + 1, "at most one pod of surge"
            # The canary gets at least its share, and at most one pod more than that.
            assert split.canary * 100 >= total * weight
            assert (split.canary - 1) * 100 < total * weight or split.canary == 1
        else:
            assert split == Split(0, total)


def test_share_is_the_pod_ratio() -> None:
    assert canary_share(Split(3, 1)) == 0.25
    assert canary_share(Split(0, 0)) == 0.0
