"""One flushed line per stage with the elapsed seconds, so `kubectl logs` shows progress."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO


class Progress:
    def __init__(
        self, stream: TextIO | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._stream = stream
        self._clock = clock
        self._start = clock()
        self.timings: dict[str, float] = {}
        self._current: tuple[str, float] | None = None

    def elapsed(self) -> float:
        return self._clock() - self._start

    def stage(self, name: str, detail: str = "") -> None:
        now = self.elapsed()
        if self._current is not None and self._current[0] != name:
            self._close(now)
        if self._current is None:
            self._current = (name, now)
        stream = self._stream or sys.stdout
        stream.write(f"[{now:7.1f}s] {name}{' ' + detail if detail else ''}\n")
        stream.flush()

    def done(self) -> dict[str, float]:
        self._close(self.elapsed())
        self.timings["total"] = round(self.elapsed(), 3)
        return self.timings

    def _close(self, now: float) -> None:
        if self._current is not None:
            name, began = self._current
            self.timings[name] = round(self.timings.get(name, 0.0) + now - began, 3)
            self._current = None
