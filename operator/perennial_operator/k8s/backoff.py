"""The back-off ladder shared by the loops that retry the API: after the n-th failure in a
row, wait the n-th rung; past the last rung, the last rung again."""

from __future__ import annotations

from collections.abc import Sequence


def backoff_delay(failures: int, ladder: Sequence[float]) -> float:
    """The delay after `failures` consecutive failures (1 or more) on `ladder` (seconds)."""
    if failures < 1:
        raise ValueError(f"failures must be 1 or more, not {failures}")
    if not ladder:
        raise ValueError("the ladder needs at least one rung")
    return ladder[min(failures, len(ladder)) - 1]
