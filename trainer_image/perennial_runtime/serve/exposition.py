"""/metrics: the summed worker rows rendered by prometheus-client."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
    UnknownMetricFamily,
)
from prometheus_client.registry import Collector

from perennial_runtime.serve.metrics import (
    BATCH_BUCKETS,
    CODES,
    LATENCY_BUCKETS,
    PROTOCOLS,
    REJECTED_CODES,
    Identity,
    Layout,
    SharedCounters,
)


class Exporter(Collector):
    def __init__(self, layout: Layout, counters: SharedCounters, identity: Identity) -> None:
        self.layout, self.counters, self.identity = layout, counters, identity
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def collect(self) -> Iterator[Metric]:
        t, lay, ident = self.counters.totals(), self.layout, self.identity
        mv = [ident.model, ident.version]
        info = GaugeMetricFamily(
            "perennial_model_info", "The model served", labels=["model", "version", "format"]
        )
        info.add_metric([*mv, ident.format], 1.0)
        yield info
        requests = CounterMetricFamily(
            "perennial_requests",
            "Inference requests the model served (answered or failed), by status code",
            labels=["model", "version", "protocol", "code"],
        )
        rejected = CounterMetricFamily(
            "perennial_rejected_requests",
            "Inference requests refused before the model saw them (4xx), by status code",
            labels=["model", "version", "protocol", "code"],
        )
        latency = HistogramMetricFamily(
            "perennial_request_duration_seconds",
            "Time from request read to response written, of requests the model served",
            labels=["model", "version", "protocol"],
        )
        nb = len(LATENCY_BUCKETS) + 1
        rejected_codes = (*REJECTED_CODES, "other")
        for p, protocol in enumerate(PROTOCOLS):
            for c, code in enumerate(CODES):
                requests.add_metric([*mv, protocol, code], t[lay.requests + p * len(CODES) + c])
            base = lay.rejected + p * len(rejected_codes)
            for c, code in enumerate(rejected_codes):
                rejected.add_metric([*mv, protocol, code], t[base + c])
            counts = t[lay.latency + p * nb : lay.latency + (p + 1) * nb]
            latency.add_metric(
                [*mv, protocol], _buckets(LATENCY_BUCKETS, counts), t[lay.latency_sum + p]
            )
        yield requests
        yield rejected
        yield latency
        batch = HistogramMetricFamily(
            "perennial_batch_size", "Rows per predict call", labels=["model", "version"]
        )
        counts = t[lay.batch : lay.batch + len(BATCH_BUCKETS) + 1]
        batch.add_metric(mv, _buckets(BATCH_BUCKETS, counts), t[lay.batch_sum])
        yield batch
        yield from self._drift(t, mv)
        yield from self._feedback(t, mv)

    def _drift(self, t: np.ndarray, mv: list[str]) -> Iterator[Metric]:
        lay = self.layout
        bins = CounterMetricFamily(
            "perennial_feature_bin",
            "Served feature values per profile.json bin",
            labels=["model", "version", "feature", "bin"],
        )
        for slot, (feature, label) in enumerate(lay.bin_labels):
            bins.add_metric([*mv, feature, label], t[lay.bins_start + slot])
        yield bins
        predictions = CounterMetricFamily(
            "perennial_predictions",
            "Predictions per class (regression: per profile bin)",
            labels=["model", "version", "class"],
        )
        for i, label in enumerate(lay.prediction_labels):
            predictions.add_metric([*mv, label], t[lay.predictions + i])
        yield predictions

    def _feedback(self, t: np.ndarray, mv: list[str]) -> Iterator[Metric]:
        base = self.layout.feedback
        outcome = CounterMetricFamily(
            "perennial_feedback",
            "Ground-truth feedback on classifications",
            labels=["model", "version", "outcome"],
        )
        outcome.add_metric([*mv, "correct"], t[base])
        outcome.add_metric([*mv, "incorrect"], t[base + 1])
        yield outcome
        # Plain names (no _total suffix) as the operator reads them; monotonic all the same.
        for offset, name in ((2, "abs_error_sum"), (3, "squared_error_sum"), (4, "count")):
            family = UnknownMetricFamily(
                f"perennial_feedback_{name}",
                "Regression feedback (monotonic)",
                labels=["model", "version"],
            )
            family.add_metric(mv, t[base + offset])
            yield family


def _buckets(bounds: tuple[float, ...], counts: np.ndarray) -> list[tuple[str, float]]:
    cumulative = np.cumsum(counts)
    pairs = [(repr(float(b)), float(c)) for b, c in zip(bounds, cumulative, strict=False)]
    return [*pairs, ("+Inf", float(cumulative[-1]))]
