"""Counters judged over a sliding window, not the pods' lifetime (issue 20, finding 3).

The servers export cumulative counters. Summed as they are, one burst of feedback (or
hostile traffic) weighs on liveMetric and drift for as long as the pods live, so a
RetrainPolicy fires again after every cooldown. Here each scrape's counters become
increments per pod and series, handled as Prometheus `increase` does: a value lower than
the pod's previous one is a restart (the counter started again from 0). Increments add up
into reset-free running totals, and a few timed marks of those totals let the caller ask
for the increase over (about) the last `window` seconds.

A pod seen for the first time counts from 0 when it started within the window (`fresh`:
all it counted is recent); an older one is only a baseline, since what it counted before
is of unknown age (after an operator restart, say). The state is plain data, bounded: at
most MARKS + 1 marks, and series as many as the pods export.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field

from perennial_operator.decide.monitoring.samples import Sample

MARKS = 32  # timed marks kept per version: one per window/MARKS seconds at most
DEFAULT_WINDOW_SECONDS = 3600

SeriesKey = tuple[str, tuple[tuple[str, str], ...]]
Totals = Mapping[SeriesKey, float]


@dataclass(frozen=True)
class Window:
    last: Mapping[str, Totals]  # each pod's last raw counter values
    totals: Totals  # reset-free running sums across pods since the baseline
    marks: tuple[tuple[float, Totals], ...] = field(default=())  # (time, totals), oldest first


def _key(sample: Sample) -> SeriesKey:
    return sample.name, tuple(sorted(sample.labels.items()))


def advance(
    state: Window | None,
    scraped: Mapping[str, Iterable[Sample]],
    now: float,
    window: float = DEFAULT_WINDOW_SECONDS,
    fresh: Collection[str] = (),
) -> Window:
    """The state after one scrape: `scraped` holds the samples of each pod that answered,
    by pod (its address); `fresh` the pods that started within the window. Pods that did
    not answer keep their last values until the caller drops them (`forget_pods`)."""
    last = {pod: dict(values) for pod, values in (state.last if state else {}).items()}
    totals = dict(state.totals) if state else {}
    for pod, samples in scraped.items():
        previous = last.get(pod)
        current = {_key(s): float(s.value) for s in samples}
        for key, value in current.items():
            if previous is None:
                step = value if pod in fresh else 0.0  # an old pod's past is of unknown age
            elif key not in previous or value < previous[key]:
                step = value  # a new series, or a restart: counted from 0
            else:
                step = value - previous[key]
            totals[key] = totals.get(key, 0.0) + step
        last[pod] = current
    # Before the first scrape nothing was counted: fresh pods' counts are increase.
    marks = list(state.marks) if state else [(now, {})]
    if not marks or now - marks[-1][0] >= window / MARKS:
        marks.append((now, dict(totals)))
    # Marks older than the window are never a base again (see `increase`).
    while len(marks) > 1 and marks[0][0] < now - window:
        marks.pop(0)
    return Window(last, totals, tuple(marks[-(MARKS + 1) :]))


def forget_pods(state: Window, present: Iterable[str]) -> Window:
    """Drop the last values of pods that are gone (their increments stay in the totals)."""
    keep = set(present)
    return Window({p: v for p, v in state.last.items() if p in keep}, state.totals, state.marks)


def increase(state: Window, now: float, window: float = DEFAULT_WINDOW_SECONDS) -> list[Sample]:
    """Each series' increase since the oldest mark in the last `window` seconds, summed
    across pods: never longer than the window, shorter by window/MARKS at most once the
    state is older than the window (a burst stops counting once it is out of it)."""
    base = next((totals for when, totals in state.marks if when >= now - window), None)
    if base is None:
        return []
    return [
        Sample(name, dict(labels), value - base.get((name, labels), 0.0))
        for (name, labels), value in state.totals.items()
    ]
