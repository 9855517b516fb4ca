"""Drift use case: scrape the current version's ready pods, sum their counters, compute
PSI per feature against the version's profile, and write status.drift and liveMetric."""

from __future__ import annotations

import logging
from typing import Any

from perennial_operator import metrics
from perennial_operator.api.group import API_VERSION
from perennial_operator.config import OperatorConfig
from perennial_operator.decide.monitoring.drift import drift_report
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
    drift = drift_report(profile, samples, now=now_iso()) if profile else None
    if drift is not None:
        # A merge patch merges maps: features that are gone must be nulled explicitly.
        old = (status.get("drift") or {}).get("features") or {}
        drift["features"] = {**{k: None for k in old}, **drift["features"]}
        patch["drift"] = drift
        metrics.DRIFT_PSI.labels(namespace=ns, inferenceservice=meta["name"]).set(drift["psi"])
    if patch:
        kube.patch_status(API_VERSION, "InferenceService", ns, meta["name"], patch)
    return patch or None
