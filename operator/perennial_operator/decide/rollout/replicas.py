"""How many pods each track runs at a canary weight: traffic follows the replica ratio,
because the Service selects stable and canary pods alike."""

from __future__ import annotations

from typing import NamedTuple


class Split(NamedTuple):
    stable: int
    canary: int


def canary_split(total: int, weight: int) -> Split:
    """Replicas for `weight` percent of `total` on the canary.

    The canary gets its share rounded up (at least one pod, so it can be measured), and
    the stable keeps at least one pod until the weight reaches 100: below 100 percent the
    old version must still answer, even if that means one pod over `total`.
    """
    if total <= 0:
        return Split(0, 0)
    weight = min(max(weight, 0), 100)
    if weight == 100:
        return Split(0, total)
    canary = min(total, max(1, -(-total * weight // 100)))
    return Split(max(total - canary, 1), canary)


def canary_share(split: Split) -> float:
    """The fraction of traffic the canary really gets (pods are picked evenly)."""
    pods = split.stable + split.canary
    return split.canary / pods if pods else 0.0
