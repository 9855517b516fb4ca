"""When to try a failed sync again: per key, after growing delays, forgotten on success.

kopf retries its own state-keeping handlers (on.create, on.update) with these delays; the
TrainingJob sync runs from watch events instead (no per-object state for kopf to patch
onto every TrainingJob: issue 18), so it keeps its retries here, one entry per key that is
failing now and none for the others.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Sequence
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


class Retries(Generic[K]):
    def __init__(self, delays: Sequence[float], clock: Callable[[], float]) -> None:
        if not delays:
            raise ValueError("at least one delay")
        self._delays = tuple(delays)
        self._clock = clock
        self._lock = threading.Lock()
        self._due: dict[K, tuple[float, int]] = {}  # key -> (when, failures so far)

    def failed(self, key: K) -> float:
        """Note a failure; returns the delay until the next try."""
        with self._lock:
            _, failures = self._due.get(key, (0.0, 0))
            delay = self._delays[min(failures, len(self._delays) - 1)]
            self._due[key] = (self._clock() + delay, failures + 1)
            return delay

    def succeeded(self, key: K) -> None:
        with self._lock:
            self._due.pop(key, None)

    forget = succeeded  # a deleted object is retried no more

    def due(self) -> list[K]:
        """The keys whose delay is over (they stay until succeeded or failed again)."""
        now = self._clock()
        with self._lock:
            return [key for key, (when, _) in self._due.items() if when <= now]

    def __len__(self) -> int:
        with self._lock:
            return len(self._due)
