"""Poll with a deadline; never sleep and hope."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def until(
    fn: Callable[[], T | None],
    *,
    timeout: float = 30.0,
    interval: float = 0.2,
    message: str = "condition",
    describe: Callable[[], str] | None = None,
) -> T:
    """Return fn()'s first truthy value; fail with `message` (and describe()) on timeout."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(interval)
    extra = f"\n{describe()}" if describe else ""
    raise AssertionError(f"timed out after {timeout}s waiting for {message}; last={last!r}{extra}")
