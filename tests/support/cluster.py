"""`wait_for`, the control-plane tests' name for support.poll.until (one polling loop)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from support.poll import until

T = TypeVar("T")


def wait_for(
    predicate: Callable[[], T | None],
    timeout: float = 30.0,
    interval: float = 0.2,
    message: str = "condition",
) -> T:
    """Call predicate until it returns something truthy, and return that; AssertionError
    naming `message` and the last value after `timeout` seconds."""
    return until(predicate, timeout=timeout, interval=interval, message=message)
