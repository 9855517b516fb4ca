"""The drift reference: quantile edges, the shared bin rule, categorical 'other'."""

from __future__ import annotations

import bisect

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perennial_runtime.train.profile import bin_index, categorical_profile, numeric_profile

pytestmark = pytest.mark.unit


def test_numeric_profile_has_interior_edges_and_counts_with_bisect_left() -> None:
    values = pd.Series(np.arange(100, dtype=float))
    profile = numeric_profile("x", values, bins=4)
    assert profile["edges"] == [24.75, 49.5, 74.25]
    assert profile["proportions"] == [0.25, 0.25, 0.25, 0.25]
    assert bin_index(profile["edges"], 24.75) == 0  # right-closed: an edge belongs below


def test_missing_values_are_counted_apart() -> None:
    profile = numeric_profile("x", pd.Series([1.0, np.nan, 3.0, np.nan]), bins=2)
    assert profile["missing"] == 0.5 and sum(profile["proportions"]) == pytest.approx(1)


def test_constant_column_has_one_bin() -> None:
    profile = numeric_profile("x", pd.Series([5.0] * 10))
    assert profile["edges"] == [5.0] and profile["proportions"] == [1.0, 0.0]


def test_categorical_profile_keeps_a_last_bucket_for_unseen_values() -> None:
    profile = categorical_profile("plan", pd.Series(["a", "b", "a", "", "a"], dtype=object))
    assert profile["categories"] == ["a", "b"]
    assert profile["proportions"] == [0.75, 0.25, 0.0]
    assert profile["missing"] == 0.2


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=300), st.integers(min_value=2, max_value=20)
)
def test_edges_strictly_increase_and_proportions_match_the_rule(
    values: list[float], bins: int
) -> None:
    profile = numeric_profile("x", pd.Series(values), bins=bins)
    edges = profile["edges"]
    assert all(a < b for a, b in zip(edges, edges[1:], strict=False))
    assert len(profile["proportions"]) == len(edges) + 1 <= bins
    counts = np.bincount([bisect.bisect_left(edges, v) for v in values], minlength=len(edges) + 1)
    assert profile["proportions"] == pytest.approx(list(counts / len(values)), abs=1e-6)
