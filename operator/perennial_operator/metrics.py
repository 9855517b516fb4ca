"""The operator's own Prometheus metrics (prefix perennial_operator_)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

RECONCILES = Counter(
    "perennial_operator_reconciles_total", "Reconciles by kind and outcome", ["kind", "outcome"]
)
RECONCILE_SECONDS = Histogram(
    "perennial_operator_reconcile_duration_seconds",
    "Time spent in one reconcile, by kind",
    ["kind"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
TRAININGJOBS = Gauge(
    "perennial_operator_trainingjobs", "TrainingJobs by phase, as last seen", ["phase"]
)
MODELS_REGISTERED = Counter(
    "perennial_operator_models_registered_total", "ModelVersions registered", ["model"]
)
STAGE_CHANGES = Counter(
    "perennial_operator_stage_changes_total", "ModelVersion stage changes", ["model", "stage"]
)
