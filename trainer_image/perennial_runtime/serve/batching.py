"""Adaptive micro-batching: gather concurrent requests into one vectorised predict.

A batch is flushed as soon as any of these holds:
- it holds ``max_batch_size`` rows;
- the event loop has nothing else ready (the flush is scheduled with ``call_soon``, so it
  runs after every request already read in this loop turn has joined), unless another
  request is half-read (headers in, body still arriving): then it waits for that one;
- ``max_latency`` has passed since the oldest request in the batch arrived.

So a lone request never waits for company, and no request waits longer than the bound
for one that is slow to arrive. Under load the batch grows by itself: while one predict
runs, the next requests pile up in the socket buffers and are all read in the next turn.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from perennial_runtime.serve.validation import Rows

log = logging.getLogger("perennial.serve")


class Handle(Protocol):
    def cancel(self) -> None: ...


class Scheduler(Protocol):
    """The part of an asyncio event loop the batcher uses (a fake one in tests)."""

    def call_soon(self, callback: Callable[[], None]) -> Any: ...

    def call_later(self, delay: float, callback: Callable[[], None]) -> Any: ...

    def time(self) -> float: ...


@dataclass(frozen=True)
class Outcome:
    labels: np.ndarray
    probabilities: np.ndarray | None


Done = Callable[[Outcome | BaseException], None]
PredictFn = Callable[[np.ndarray, np.ndarray | None, bool], tuple[np.ndarray, np.ndarray | None]]
BatchObserver = Callable[[Rows, Outcome], None]


@dataclass
class _Job:
    rows: Rows
    proba: bool
    done: Done
    arrived: float


@dataclass
class MicroBatcher:
    predict: PredictFn
    scheduler: Scheduler
    max_batch_size: int = 64
    max_latency: float = 0.002
    observe: BatchObserver | None = None
    _jobs: list[_Job] = field(default_factory=list)
    _rows: int = 0
    _soon: Any = None
    _timer: Any = None
    _reading: int = 0  # requests whose headers arrived but whose body has not

    def submit(self, rows: Rows, proba: bool, done: Done) -> None:
        self._jobs.append(_Job(rows, proba, done, self.scheduler.time()))
        self._rows += rows.count
        if self._rows >= self.max_batch_size:
            self.flush()
            return
        if self._soon is None:
            self._soon = self.scheduler.call_soon(self._on_idle)
        if self._timer is None:
            self._timer = self.scheduler.call_later(self.max_latency, self.flush)

    def reading_started(self) -> None:
        self._reading += 1

    def reading_finished(self) -> None:
        self._reading = max(0, self._reading - 1)

    def _on_idle(self) -> None:
        self._soon = None
        if self._reading == 0:
            self.flush()
        # else: a request is half-read; the timer bounds how long we wait for it.

    def flush(self) -> None:
        for handle in (self._soon, self._timer):
            if handle is not None:
                handle.cancel()
        self._soon = self._timer = None
        jobs, self._jobs, self._rows = self._jobs, [], 0
        if jobs:
            self._run(jobs)

    def _run(self, jobs: list[_Job]) -> None:
        rows = _concat([job.rows for job in jobs])
        proba = any(job.proba for job in jobs)
        try:
            labels, probabilities = self.predict(rows.numeric, rows.categorical, proba)
        except Exception as exc:  # reported to every waiting request as a 500
            log.exception("predict failed on a batch of %d rows", rows.count)
            for job in jobs:
                job.done(exc)
            return
        outcome = Outcome(labels, probabilities)
        if self.observe is not None:
            self.observe(rows, outcome)
        start = 0
        for job in jobs:
            end = start + job.rows.count
            part = probabilities[start:end] if probabilities is not None else None
            try:
                job.done(Outcome(labels[start:end], part))
            except Exception:  # one broken answer must not leave the rest unanswered
                log.exception("answering a request failed")
            start = end


def _concat(parts: list[Rows]) -> Rows:
    if len(parts) == 1:
        return parts[0]
    numeric = np.concatenate([p.numeric for p in parts])
    categorical = None
    if parts[0].categorical is not None:
        categorical = np.concatenate([p.categorical for p in parts if p.categorical is not None])
    return Rows(numeric, categorical)
