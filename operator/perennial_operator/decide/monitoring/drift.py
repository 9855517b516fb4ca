"""Drift: the population stability index (PSI) of live inputs against the training profile.

The server counts every input value into the profile's bins (perennial_feature_bin_total,
bins "0".."k-1", plus "other" for unseen categories and "missing"). The operator sums those
counters across the replicas of one version and compares the proportions with profile.json:

    PSI = sum over bins of (live - reference) * ln(live / reference)

Empty bins on either side are clamped to EPSILON, so a bin the training data never filled
(an unseen category) counts as strong drift instead of dividing by zero. The service's
overall PSI is the largest per-feature value: one drifted feature is enough to act on,
and an average would hide it among the stable ones.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from perennial_operator.api.timestamps import epoch
from perennial_operator.decide.monitoring.samples import Sample, by_label

EPSILON = 1e-4
FEATURE_BINS = "perennial_feature_bin_total"
WORST = 5  # features listed in status.drift.worst
MAX_FEATURES = 4096  # the CRD's bound on status.drift.features
DEFAULT_MIN_SAMPLES = 100  # spec.monitoring.drift.minSamples default (the CRD's)


def drift_due(isvc: Mapping[str, Any], now: float, attempted: float) -> bool:
    """Is a measurement due: drift monitoring on, a version served, and intervalSeconds
    passed since the last one written or attempted (an attempt may find no data to write)."""
    drift = (isvc["spec"].get("monitoring") or {}).get("drift") or {}
    status = isvc.get("status") or {}
    if not drift.get("enabled", True) or not status.get("currentVersion"):
        return False
    last = max(epoch((status.get("drift") or {}).get("time")), attempted)
    return now - last >= float(drift.get("intervalSeconds", 60))


def reference_bins(feature: Mapping[str, Any]) -> dict[str, float]:
    """One profile.json feature as proportions over the server's bin labels.

    profile.json keeps proportions over non-missing values and the missing fraction apart;
    the server counts missing values in their own bin, so both are put on one scale.
    """
    proportions = [float(p) for p in feature.get("proportions") or []]
    missing = min(max(float(feature.get("missing") or 0.0), 0.0), 1.0)
    present = 1.0 - missing
    bins: dict[str, float] = {}
    if feature.get("kind") == "categorical":
        listed, other = proportions[:-1], proportions[-1:] or [0.0]
        bins = {str(i): p * present for i, p in enumerate(listed)}
        bins["other"] = other[0] * present
    else:
        bins = {str(i): p * present for i, p in enumerate(proportions)}
    bins["missing"] = missing
    return bins


def psi(reference: Mapping[str, float], counts: Mapping[str, float]) -> float | None:
    """PSI of live `counts` against `reference` proportions; None without live data."""
    seen = sum(counts.values())
    if seen <= 0:
        return None
    value = 0.0
    for label in set(reference) | set(counts):
        expected = max(reference.get(label, 0.0), EPSILON)
        actual = max(counts.get(label, 0.0) / seen, EPSILON)
        value += (actual - expected) * math.log(actual / expected)
    return value


def feature_counts(samples: Iterable[Sample]) -> dict[str, dict[str, float]]:
    """Bin counts per feature, summed across replicas."""
    counts: dict[str, dict[str, float]] = {}
    for (feature, label), value in by_label(samples, FEATURE_BINS, "feature", "bin").items():
        counts.setdefault(feature, {})[label] = value
    return counts


def drift_report(
    profile: Mapping[str, Any], samples: Iterable[Sample], *, now: str, min_samples: int = 0
) -> dict[str, Any] | None:
    """status.drift, or None when no profiled feature has seen live traffic yet. Below
    `min_samples` (spec.monitoring.drift.minSamples) only the sample count: a PSI from a
    handful of requests is noise, and nothing (a RetrainPolicy, a dashboard) should act on it;
    psi, features and worst are null so a merge patch removes earlier values."""
    counts = feature_counts(samples)
    per_feature: dict[str, float] = {}
    seen = 0.0
    for feature in profile.get("features") or []:
        name = str(feature.get("name"))
        live = counts.get(name, {})
        value = psi(reference_bins(feature), live)
        if value is not None:
            per_feature[name] = round(value, 6)
            seen = max(seen, sum(live.values()))
    if not per_feature:
        return None
    if seen < min_samples:
        return {"psi": None, "features": {}, "worst": None, "samples": int(seen), "time": now}
    ranked = sorted(per_feature, key=lambda n: (-per_feature[n], n))
    return {
        "psi": max(per_feature.values()),
        "features": {n: per_feature[n] for n in ranked[:MAX_FEATURES]},
        "worst": ranked[:WORST],
        "samples": int(seen),
        "time": now,
    }


def exported_features(features: Mapping[str, float | None], limit: int = 20) -> list[str]:
    """The features whose PSI the operator exports as a metric: the `limit` worst, so a wide
    table does not make thousands of series (status.drift.features has them all)."""
    valued = {k: v for k, v in features.items() if v is not None}
    return sorted(valued, key=lambda k: (-valued[k], k))[:limit]
