"""Children's news held for a moment, so that news arriving together is synced together.

A TrainingJob's pod brings its news in quick steps: the pod made (the Job controller), then
the scheduler's answer (unschedulable, or bound) 10-70 ms later, then the Job's own status
(its startTime, a pod active) some 0.3 s after that (audit log of a burst of 1,000, issue
18). Synced on each step, that is three status writes of the TrainingJob, the costliest
request the operator makes, where one sync after the last step says the same. So the first
news of a key starts its period; news during it joins it; the key is handed out once the
period is over, and the sync then reads what the watches show by that time. Kubernetes' own
Job controller batches its pods' events the same way (`syncJobBatchPeriod`, 1 s).

One entry per key with news not yet handed out, none for the others: nothing outlives a
deleted object (`forget`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


class NewsBatch(Generic[K]):
    def __init__(self, period: float, clock: Callable[[], float]) -> None:
        if period < 0:
            raise ValueError(f"period must be 0 or more, not {period}")
        self._period = period
        self._clock = clock
        self._lock = threading.Lock()
        self._due: dict[K, float] = {}  # key -> when its period ends

    def add(self, key: K) -> None:
        """News for `key`: it starts the key's period, or joins the one running."""
        with self._lock:
            self._due.setdefault(key, self._clock() + self._period)

    def take_due(self) -> list[K]:
        """The keys whose period is over, in the order their news began; handed out once:
        news that comes later starts a new period."""
        now = self._clock()
        with self._lock:
            due = [key for key, when in self._due.items() if when <= now]
            for key in due:
                del self._due[key]
        return due

    def forget(self, key: K) -> None:
        with self._lock:
            self._due.pop(key, None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._due)
