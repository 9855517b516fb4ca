"""The metric a person looks at first, per task: the printer column of TrainingJobs and
ModelVersions, and the promotion gate's default."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

PRIMARY_METRICS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "classification": ("roc_auc", "accuracy"),
        "image-classification": ("accuracy",),
        "text-classification": ("accuracy", "f1_macro"),
        "regression": ("r2", "rmse"),
        "recommendation": ("precision_at_k", "rmse"),
        "clustering": ("silhouette",),
        "anomaly-detection": ("roc_auc", "anomaly_fraction"),
    }
)


def primary_metric(task: str, metrics: dict[str, Any], preferred: str | None = None) -> str:
    """`name=value` of the metric a person looks at first, for the printer column."""
    for name in ((preferred,) if preferred else ()) + PRIMARY_METRICS.get(task, ()):
        value = metrics.get(name) if name else None
        if isinstance(value, int | float):
            return f"{name}={value:.4g}"
    for name, value in sorted(metrics.items()):
        if isinstance(value, int | float):
            return f"{name}={value:.4g}"
    return ""
