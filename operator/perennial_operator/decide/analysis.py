"""Canary analysis: error rate and p99 latency from the servers' Prometheus counters,
compared with the rollout's thresholds."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from perennial_operator.api import conditions as c
from perennial_operator.decide.samples import Sample, by_label

REQUESTS = "perennial_requests_total"
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


def request_stats(samples: Iterable[Sample]) -> RequestStats:
    """Totals across replicas: 5xx answers are errors (4xx are the client's fault)."""
    samples = list(samples)
    codes = by_label(samples, REQUESTS, "code")
    requests = sum(codes.values())
    errors = sum(v for (code,), v in codes.items() if code.startswith("5"))
    cumulative = by_label(samples, BUCKETS, "le")
    buckets = [(float(le), count) for (le,), count in cumulative.items() if le]
    p99 = histogram_quantile(0.99, buckets) if requests else None
    return RequestStats(requests, errors, None if p99 is None else p99 * 1000.0)


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
