"""Drift use case: scrape the current version's ready pods, turn their counters into the
increase over spec.monitoring.drift.windowSeconds, compute PSI per feature against the
version's profile and the live metric, and write status.drift and liveMetric.

The window's state (decide/monitoring/window.py) lives in the InferenceService's kopf memo
(one per object, gone with it; one version at a time). It survives nothing on purpose:
after a restart or a leader change the first scrape is a baseline for the pods older than
the window (pods younger than it count from 0: all they counted is recent), and minSamples
keeps the shorter windows that follow from counting until they hold enough.
Status would survive a restart, but per-pod counters of every profiled bin are too large
for it and would be rewritten on every measurement.
"""

from __future__ import annotations

import logging
import time
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
from perennial_operator.decide.monitoring.samples import Sample, of_version
from perennial_operator.decide.monitoring.window import (
    DEFAULT_WINDOW_SECONDS,
    Window,
    advance,
    forget_pods,
    increase,
)
from perennial_operator.desired import inferenceservice as desired
from perennial_operator.k8s.kube import KubeApi, now_iso
from perennial_operator.k8s.scrape import ReferenceSource
from perennial_operator.reconcile.inferenceservice.pods import pod_starts, samples_by_pod

log = logging.getLogger(__name__)


def windowed(
    previous: tuple[int, Window] | None,
    version: int,
    starts: dict[str, float],
    scraped: dict[str, list[Sample]],
    now: float,
    window: float,
) -> tuple[list[Sample], tuple[int, Window]]:
    """The increase of every series over the last `window` seconds, this scrape included,
    and the state to pass next time (a new version starts a new window). `starts` holds
    when each ready pod asked started (epoch seconds); `scraped` the ones that answered."""
    state = previous[1] if previous is not None and previous[0] == version else None
    fresh = {pod for pod, started in starts.items() if started > now - window}
    state = forget_pods(advance(state, scraped, now, window, fresh), starts)
    return increase(state, now, window), (version, state)


def measure_drift(
    kube: KubeApi,
    isvc: dict[str, Any],
    config: OperatorConfig,
    source: ReferenceSource,
    previous: tuple[int, Window] | None = None,
) -> tuple[dict[str, Any] | None, tuple[int, Window] | None]:
    """Measure and write; returns the status patch (None when there was nothing to write)
    and the window state to pass next time."""
    meta, status = isvc["metadata"], isvc.get("status") or {}
    ns, version = meta["namespace"], int(status["currentVersion"])
    mv = kube.get(API_VERSION, "ModelVersion", ns, str(status.get("currentModelVersion")))
    if mv is None:
        return None, previous
    # Every ready pod of the current version: during a promotion the canary's pods count too.
    starts = pod_starts(kube, ns, desired.selector(isvc), version, config)
    urls = list(starts)
    scraped = {url: of_version(s, version) for url, s in samples_by_pod(urls).items()}
    window = float(drift_spec(isvc).get("windowSeconds", DEFAULT_WINDOW_SECONDS))
    samples, state = windowed(previous, version, starts, scraped, time.time(), window)
    model = str(isvc["spec"]["model"]["name"])
    patch: dict[str, Any] = {}
    live = live_metric(samples)
    if live is not None:
        patch["liveMetric"] = live
    elif scraped and status.get("liveMetric"):
        patch["liveMetric"] = None  # no feedback in the window: the old value no longer holds
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
    if drift is None and profile and scraped and (status.get("drift") or {}).get("psi") is not None:
        # No traffic in the window: a PSI of older traffic must not stay for triggers to read
        # (when no pod answered, nothing was measured: the last values stay).
        drift = {"psi": None, "features": {}, "worst": None, "samples": 0, "time": now_iso()}
    if drift is not None:
        # A merge patch merges maps: features that are gone must be nulled explicitly.
        old = (status.get("drift") or {}).get("features") or {}
        _export(ns, meta["name"], old, drift)
        drift["features"] = {**{k: None for k in old}, **drift["features"]}
        patch["drift"] = drift
    if patch:
        kube.patch_status(API_VERSION, "InferenceService", ns, meta["name"], patch)
    return patch or None, state


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
