"""Prometheus metrics shared by all worker processes without locks.

Every metric series the server can ever emit is known at start (codes, buckets, feature
bins and classes come from the signature and profile), so each worker owns one row of a
float64 array in an anonymous shared mapping created before the fork. A worker only adds
to its own row (vectorised, a few microseconds per batch); ``/metrics`` on any worker sums
the rows, so counters are exact across workers and stay monotonic if a worker restarts.
exposition.py renders them with prometheus-client.
"""

from __future__ import annotations

import bisect
import mmap
from dataclasses import dataclass

import numpy as np

from perennial_runtime.serve.batching import Outcome
from perennial_runtime.serve.signature import CategoricalBins, NumericBins, Profile, Signature
from perennial_runtime.serve.validation import Rows

PROTOCOLS = ("v1", "v2")
# Requests the model served (its answer or its failure): what canary analysis judges.
CODES = ("200", "500", "503", "other")
# Requests refused before the model saw them (the client's fault): counted apart, so cheap
# or slow bad requests can neither dilute the error rate nor enter the latency histogram.
REJECTED_CODES = ("400", "401", "403", "404", "405", "408", "413", "414", "422", "429", "431")
LATENCY_BUCKETS = (
    0.0001,
    0.00025,
    0.0005,
    0.00075,
    0.001,
    0.0015,
    0.002,
    0.003,
    0.004,
    0.005,
    0.0075,
    0.01,
    0.015,
    0.02,
    0.03,
    0.05,
    0.075,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
FEEDBACK = ("correct", "incorrect", "abs_error_sum", "squared_error_sum", "count")


@dataclass(frozen=True)
class Identity:
    model: str
    version: str
    format: str


class Layout:
    """Where each series lives in a worker's row."""

    def __init__(self, signature: Signature, profile: Profile) -> None:
        self.size = 0
        self.requests = self._take(len(PROTOCOLS) * len(CODES))
        self.rejected = self._take(len(PROTOCOLS) * (len(REJECTED_CODES) + 1))  # + "other"
        nb = len(LATENCY_BUCKETS) + 1  # + the +Inf bucket
        self.latency = self._take(len(PROTOCOLS) * nb)
        self.latency_sum = self._take(len(PROTOCOLS))
        self.batch = self._take(len(BATCH_BUCKETS) + 1)
        self.batch_sum = self._take(1)
        self.bin_labels: list[tuple[str, str]] = []  # (feature, bin) per slot, in order
        self.bins_start = self.size
        self._numeric_layout(signature, profile)
        self._categorical_layout(signature, profile)
        self.bins_end = self.size
        self.prediction_labels, self.class_index, self.prediction_edges = _prediction_bins(
            signature, profile
        )
        self.predictions = self._take(len(self.prediction_labels))
        self.feedback = self._take(len(FEEDBACK))

    def _numeric_layout(self, signature: Signature, profile: Profile) -> None:
        """Numeric features with a profile: bins 0..k-1, then "missing". The edges go into
        one padded matrix so that a batch is binned with a single numpy comparison."""
        numeric = [f.name for f in signature.numeric_features]
        self.numeric_cols: list[int] = []
        edges: list[tuple[float, ...]] = []
        for col, name in enumerate(numeric):
            bins = profile.features.get(name)
            if isinstance(bins, NumericBins):
                self.numeric_cols.append(col)
                edges.append(bins.edges)
        width = max((len(e) for e in edges), default=0)
        self.edges = np.full((len(edges), width), np.inf)
        self.bin_base = np.zeros(len(edges), dtype=np.int64)
        self.missing_slot = np.zeros(len(edges), dtype=np.int64)
        for i, (col, e) in enumerate(zip(self.numeric_cols, edges, strict=True)):
            self.edges[i, : len(e)] = e
            self.bin_base[i] = self.size - self.bins_start
            self._label_bins(numeric[col], [str(b) for b in range(len(e) + 1)] + ["missing"])
            self.missing_slot[i] = self.size - self.bins_start - 1

    def _categorical_layout(self, signature: Signature, profile: Profile) -> None:
        """Categorical features: category index, then "other" (unseen), then "missing"."""
        self.categorical: list[tuple[int, int, dict[str, int]]] = []  # (col, base, index)
        for col, feature in enumerate(signature.categorical_features):
            bins = profile.features.get(feature.name)
            if isinstance(bins, CategoricalBins):
                index = {c: i for i, c in enumerate(bins.categories)}
                self.categorical.append((col, self.size, index))
                labels = [str(i) for i in range(len(index))] + ["other", "missing"]
                self._label_bins(feature.name, labels)

    def _take(self, n: int) -> int:
        start, self.size = self.size, self.size + n
        return start

    def _label_bins(self, feature: str, labels: list[str]) -> None:
        for label in labels:
            self.bin_labels.append((feature, label))
            self.size += 1


def _prediction_bins(
    signature: Signature, profile: Profile
) -> tuple[list[str], dict[object, int], tuple[float, ...] | None]:
    if signature.classes is not None:
        classes = list(signature.classes)
        return [str(c) for c in classes] + ["other"], {c: i for i, c in enumerate(classes)}, None
    if isinstance(profile.prediction, NumericBins):
        edges = profile.prediction.edges
        return [str(b) for b in range(len(edges) + 1)] + ["missing"], {}, edges
    return [], {}, None


class SharedCounters:
    """One float64 row per worker in a MAP_SHARED anonymous mapping (inherited by fork)."""

    def __init__(self, workers: int, size: int) -> None:
        self._map = mmap.mmap(-1, max(1, workers * size) * 8)
        self.rows = np.frombuffer(self._map, dtype=np.float64)[: workers * size].reshape(
            workers, size
        )

    def totals(self) -> np.ndarray:
        total: np.ndarray = self.rows.sum(axis=0)
        return total


class Recorder:
    """What one worker calls on its hot path; writes only to its own row."""

    def __init__(self, layout: Layout, row: np.ndarray) -> None:
        self.layout = layout
        self.row = row
        self._nb = len(LATENCY_BUCKETS) + 1
        self._code = {int(c): i for i, c in enumerate(CODES[:-1])}
        self._rejected = {int(c): i for i, c in enumerate(REJECTED_CODES)}

    def request(self, protocol: int, status: int, seconds: float) -> None:
        lay, row = self.layout, self.row
        if 400 <= status < 500:
            width = len(REJECTED_CODES) + 1
            slot = self._rejected.get(status, len(REJECTED_CODES))
            row[lay.rejected + protocol * width + slot] += 1
            return
        row[lay.requests + protocol * len(CODES) + self._code.get(status, len(CODES) - 1)] += 1
        bucket = bisect.bisect_left(LATENCY_BUCKETS, seconds)
        row[lay.latency + protocol * self._nb + bucket] += 1
        row[lay.latency_sum + protocol] += seconds

    def batch(self, rows: Rows, outcome: Outcome) -> None:
        lay, row = self.layout, self.row
        row[lay.batch + bisect.bisect_left(BATCH_BUCKETS, rows.count)] += 1
        row[lay.batch_sum] += rows.count
        self._numeric_bins(rows.numeric)
        self._categorical_bins(rows.categorical)
        self._predictions(outcome.labels)

    def _numeric_bins(self, numeric: np.ndarray) -> None:
        lay = self.layout
        if not lay.numeric_cols:
            return
        values = numeric[:, lay.numeric_cols]
        # bisect_left per value: the number of edges strictly below it (right-closed bins).
        slots = (values[:, :, None] > lay.edges[None, :, :]).sum(axis=2) + lay.bin_base
        missing = np.isnan(values)
        if missing.any():
            slots = np.where(missing, lay.missing_slot, slots)
        counts = np.bincount(slots.ravel(), minlength=lay.bins_end - lay.bins_start)
        self.row[lay.bins_start : lay.bins_end] += counts[: lay.bins_end - lay.bins_start]

    def _categorical_bins(self, categorical: np.ndarray | None) -> None:
        if categorical is None:
            return
        for col, base, index in self.layout.categorical:
            other = len(index)
            for value in categorical[:, col]:
                # "" is how perennial-train encodes a missing category; the profile agrees.
                slot = other + 1 if value is None or value == "" else index.get(value, other)
                self.row[base + slot] += 1

    def _predictions(self, labels: np.ndarray) -> None:
        lay = self.layout
        if not lay.prediction_labels:
            return
        if lay.prediction_edges is None:
            other = len(lay.prediction_labels) - 1
            for label in labels.tolist():
                self.row[lay.predictions + lay.class_index.get(label, other)] += 1
            return
        values = labels.astype(np.float64)
        slots = np.searchsorted(np.asarray(lay.prediction_edges), values, side="left")
        slots = np.where(np.isnan(values), len(lay.prediction_labels) - 1, slots)
        counts = np.bincount(slots, minlength=len(lay.prediction_labels))
        self.row[lay.predictions : lay.predictions + len(lay.prediction_labels)] += counts

    def feedback(self, correct: int, incorrect: int, abs_sum: float, sq_sum: float, n: int) -> None:
        base = self.layout.feedback
        for offset, value in enumerate((correct, incorrect, abs_sum, sq_sum, n)):
            self.row[base + offset] += value
