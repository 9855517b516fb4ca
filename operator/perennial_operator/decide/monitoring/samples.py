"""Prometheus samples as plain data, and sums across the replicas that exported them.

The k8s layer scrapes and parses; these functions only add numbers up, so every
aggregation is testable without a server.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import NamedTuple


class Sample(NamedTuple):
    name: str
    labels: Mapping[str, str]
    value: float


def of_version(samples: Iterable[Sample], version: int | str) -> list[Sample]:
    """Only the series a given model version exported (a pod serves exactly one)."""
    wanted = str(version)
    return [s for s in samples if s.labels.get("version") == wanted]


def total(samples: Iterable[Sample], name: str, **match: str) -> float:
    """Sum of every `name` sample whose labels include `match`, across all replicas."""
    return sum(
        s.value
        for s in samples
        if s.name == name and all(s.labels.get(k) == v for k, v in match.items())
    )


def by_label(samples: Iterable[Sample], name: str, *labels: str) -> dict[tuple[str, ...], float]:
    """Sum of `name` grouped by the values of `labels` (missing labels group as "")."""
    sums: dict[tuple[str, ...], float] = {}
    for s in samples:
        if s.name == name:
            key = tuple(s.labels.get(label, "") for label in labels)
            sums[key] = sums.get(key, 0.0) + s.value
    return sums
