"""Canary analysis: error rate and p99 latency from the servers' Prometheus counters,
compared with the rollout's thresholds.

A canary step is judged on its own traffic: when the step's clock starts, the counters of
every canary pod are kept as the step's baseline (`PodCounters`, in status), and the
analysis uses what each pod counted since (`increase`), summed across pods (`step_stats`).
A pod whose counters went down, or whose container restarted, counts from zero, as
Prometheus' increase() does with counter resets; so does a pod that joined mid-step.
A canary of more than MAX_BASELINE_PODS pods is judged on a fixed sample of them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from perennial_operator.api import conditions as c
from perennial_operator.decide.monitoring.samples import Sample, by_label

REQUESTS = "perennial_requests_total"
# status.canary.baseline holds at most this many pods (the CRD's maxItems: about 0.5 KB
# each, and the status must stay well under etcd's object size limit). A larger canary is
# judged on a sample: the first MAX_BASELINE_PODS pods by name when the clock started.
MAX_BASELINE_PODS = 1000
BUCKETS = "perennial_request_duration_seconds_bucket"


@dataclass(frozen=True)
class RequestStats:
    requests: float
    errors: float
    p99_ms: float | None  # None when there were no requests

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0

    def describe(self) -> str:
        if not self.requests:
            return "no requests"
        p99 = "n/a" if self.p99_ms is None else f"{self.p99_ms:.1f}ms"
        return f"{self.requests:.0f} requests, error rate {self.error_rate:.4f}, p99 {p99}"


def histogram_quantile(q: float, buckets: Iterable[tuple[float, float]]) -> float | None:
    """Prometheus' histogram_quantile over (upper bound, cumulative count) pairs: linear
    interpolation inside the bucket that holds the rank; the +Inf bucket answers with the
    highest finite bound."""
    ordered = sorted(buckets)
    if not ordered or ordered[-1][1] <= 0:
        return None
    rank = q * ordered[-1][1]
    lower, below = 0.0, 0.0
    for upper, count in ordered:
        if count >= rank:
            if math.isinf(upper):
                return lower
            if count == below:
                return upper
            return lower + (upper - lower) * (rank - below) / (count - below)
        lower, below = upper, count
    return lower


def _stats(requests: float, errors: float, buckets: Iterable[tuple[float, float]]) -> RequestStats:
    p99 = histogram_quantile(0.99, buckets) if requests else None
    return RequestStats(requests, errors, None if p99 is None else p99 * 1000.0)


def _totals(samples: Iterable[Sample]) -> tuple[float, float, dict[float, float]]:
    """Requests the model served, 5xx errors among them, and the latency histogram's
    cumulative count per upper bound, summed over every series (protocol, replica).

    4xx are the client's fault and refused before the model ran: left out of the total, so
    cheap bad requests cannot dilute the error rate (issue 20, finding 4). Servers from
    this release count them apart (perennial_rejected_requests_total, not read here) and
    keep them out of the latency histogram; older servers count them under
    perennial_requests_total, where this filter drops them, but their histogram still
    holds rejected requests' latency."""
    samples = list(samples)
    codes = by_label(samples, REQUESTS, "code")
    requests = sum(v for (code,), v in codes.items() if not code.startswith("4"))
    errors = sum(v for (code,), v in codes.items() if code.startswith("5"))
    buckets: dict[float, float] = {}
    for (le,), count in by_label(samples, BUCKETS, "le").items():
        if le:
            buckets[float(le)] = buckets.get(float(le), 0.0) + count
    return requests, errors, buckets


def request_stats(samples: Iterable[Sample]) -> RequestStats:
    """Totals across replicas since each started: 5xx answers are errors."""
    requests, errors, buckets = _totals(samples)
    return _stats(requests, errors, buckets.items())


@dataclass(frozen=True)
class PodCounters:
    """What one canary pod has counted since it started: just what the analysis needs.
    `buckets` holds (upper bound, cumulative count) of the latency histogram, from the
    highest bound that still counts 0 upwards: lower bounds count 0 too and are left out
    (a missing bound counts 0), and the one kept is where interpolation starts."""

    pod: str
    restarts: int  # the pod's container restarts: a restart resets its counters
    requests: float
    errors: float
    buckets: tuple[tuple[float, float], ...]

    def bucket_map(self) -> dict[float, float]:
        return dict(self.buckets)


def pod_counters(pod: str, restarts: int, samples: Iterable[Sample]) -> PodCounters:
    """One pod's counters from its samples (the caller keeps only the version's series)."""
    requests, errors, buckets = _totals(samples)
    return PodCounters(pod, restarts, requests, errors, compact(buckets.items()))


def compact(buckets: Iterable[tuple[float, float]]) -> tuple[tuple[float, float], ...]:
    """Cumulative buckets without the leading zeros, except the last one: the quantile
    interpolates from that bound, so histogram_quantile gives the same answer."""
    ordered = sorted(buckets)
    first = next((i for i, (_, count) in enumerate(ordered) if count), len(ordered))
    return tuple(ordered[max(first - 1, 0) :]) if first < len(ordered) else ()


def increase(now: PodCounters, base: PodCounters | None) -> PodCounters:
    """What a pod counted since `base`. Without a base (the pod joined after it was taken),
    after a container restart, or when any counter went down (the process restarted), the
    pod counted everything it shows now: Prometheus' increase() on a counter reset."""
    if base is None or base.restarts != now.restarts:
        return now
    old, new = base.bucket_map(), now.bucket_map()
    reset = (
        now.requests < base.requests
        or now.errors < base.errors
        or any(new.get(le, 0.0) < count for le, count in old.items())
    )
    if reset:
        return now
    delta = tuple(sorted((le, count - old.get(le, 0.0)) for le, count in new.items()))
    return PodCounters(
        now.pod, now.restarts, now.requests - base.requests, now.errors - base.errors, delta
    )


def baseline_of(pods: Iterable[PodCounters]) -> tuple[PodCounters, ...]:
    """The step's baseline: every canary pod, or a sample of MAX_BASELINE_PODS by name."""
    return tuple(sorted(pods, key=lambda p: p.pod)[:MAX_BASELINE_PODS])


def step_stats(pods: Iterable[PodCounters], baseline: Iterable[PodCounters] | None) -> RequestStats:
    """The canary's error rate and p99 over the step: each pod's increase since the step's
    baseline, summed across pods. No baseline (None) counts from each pod's start.
    A pod that left since the baseline is not counted. A full baseline is a sample
    (`baseline_of`): only its pods are counted, since the others' counts before the step
    are unknown."""
    base: Mapping[str, PodCounters] = {b.pod: b for b in baseline or ()}
    sampled = len(base) >= MAX_BASELINE_PODS
    requests = errors = 0.0
    buckets: dict[float, float] = {}
    for pod in pods:
        if sampled and pod.pod not in base:
            continue
        step = increase(pod, base.get(pod.pod))
        requests += step.requests
        errors += step.errors
        for le, count in step.buckets:
            buckets[le] = buckets.get(le, 0.0) + count
    return _stats(requests, errors, buckets.items())


def threshold_breach(
    stats: RequestStats, *, max_error_rate: float, max_p99_ms: float
) -> tuple[str, str] | None:
    """(reason, message) when the canary is worse than allowed; None when it passes.
    No traffic is not a breach: there is nothing to hold against the new version."""
    if stats.requests and stats.error_rate > max_error_rate:
        return (
            c.ERROR_RATE_EXCEEDED,
            f"error rate {stats.error_rate:.4f} > maxErrorRate {max_error_rate} "
            f"({stats.errors:.0f} of {stats.requests:.0f} requests)",
        )
    if stats.p99_ms is not None and stats.p99_ms > max_p99_ms:
        return (
            c.LATENCY_EXCEEDED,
            f"p99 latency {stats.p99_ms:.1f}ms > maxP99LatencyMs {max_p99_ms}",
        )
    return None
