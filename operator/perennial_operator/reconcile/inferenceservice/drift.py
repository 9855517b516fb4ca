"""Drift use case: scrape the current version's ready pods, sum their counters, compute
PSI per feature against the version's profile, and write status.drift and liveMetric."""

from __future__ import annotations

import logging
from typing import Any

from perennial_operator import metrics
from perennial_operator.api.group import API_VERSION
from perennial_operator.config import OperatorConfig
from perennial_operator.decide.monitoring.drift import (
    DEFAULT_MIN_SAMPLES,
    drift_report,
    exported_features,
)
from perennial_operator.decide.monitoring.live_metric import live_metric
from perennial_operator.decide.monitoring.samples import of_version
from perennial_operator.desired import inferenceservice as desired
from perennial_operator.k8s.kube import KubeApi, now_iso
from perennial_operator.k8s.scrape import ReferenceSource
from perennial_operator.reconcile.inferenceservice.pods import pod_urls, samples_of

log = logging.getLogger(__name__)


def measure_drift(
    kube: KubeApi, isvc: dict[str, Any], config: OperatorConfig, source: ReferenceSource
) -> dict[str, Any] | None:
    """Measure and write; returns the status patch (None when there was nothing to write)."""
    meta, status = isvc["metadata"], isvc.get("status") or {}
    ns, version = meta["namespace"], int(status["currentVersion"])
    mv = kube.get(API_VERSION, "ModelVersion", ns, str(status.get("currentModelVersion")))
    if mv is None:
        return None
    # Every ready pod of the current version: during a promotion the canary's pods count too.
    urls = pod_urls(kube, ns, desired.selector(isvc), version, config)
    samples, _ = samples_of(urls)
    samples = of_version(samples, version)
    model = str(isvc["spec"]["model"]["name"])
    patch: dict[str, Any] = {}
    live = live_metric(samples)
    if live is not None:
        patch["liveMetric"] = live
    profile = next(
        (
            p
            for url in urls[:3]
            if (p := source.profile(url, model, mv["spec"]["artifact"]["sha256"]))
        ),
        None,
    )
    min_samples = int(drift_spec(isvc).get("minSamples", DEFAULT_MIN_SAMPLES))
    drift = (
        drift_report(profile, samples, now=now_iso(), min_samples=min_samples) if profile else None
    )
    if drift is not None:
        # A merge patch merges maps: features that are gone must be nulled explicitly.
        old = (status.get("drift") or {}).get("features") or {}
        _export(ns, meta["name"], old, drift)
        drift["features"] = {**{k: None for k in old}, **drift["features"]}
        patch["drift"] = drift
    if patch:
        kube.patch_status(API_VERSION, "InferenceService", ns, meta["name"], patch)
    return patch or None


def drift_spec(isvc: dict[str, Any]) -> dict[str, Any]:
    return dict(((isvc.get("spec") or {}).get("monitoring") or {}).get("drift") or {})


def _export(ns: str, name: str, old: dict[str, Any], drift: dict[str, Any]) -> None:
    """The PSI gauges: the worst feature, and one series per exported feature (series of
    features no longer exported are removed, so a dashboard does not show stale values)."""
    new = exported_features(drift["features"])
    for feature in set(exported_features(old)) - set(new):
        try:
            metrics.DRIFT_FEATURE_PSI.remove(ns, name, feature)
        except KeyError:  # not exported by this process (it restarted)
            pass
    if drift["psi"] is None:  # below minSamples: no value to show
        try:
            metrics.DRIFT_PSI.remove(ns, name)
        except KeyError:
            pass
        return
    metrics.DRIFT_PSI.labels(namespace=ns, inferenceservice=name).set(drift["psi"])
    for feature in new:
        gauge = metrics.DRIFT_FEATURE_PSI.labels(
            namespace=ns, inferenceservice=name, feature=feature
        )
        gauge.set(drift["features"][feature])
