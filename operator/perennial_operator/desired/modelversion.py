"""The ModelVersion a successful TrainingJob registers. Not owned by the TrainingJob:
deleting a job must not delete a registered model, so lineage is recorded in labels and
spec.source instead of an owner reference."""

from __future__ import annotations

from typing import Any

from perennial_operator.api.group import (
    API_VERSION,
    LABEL_MODEL,
    LABEL_TRAININGJOB,
    LABEL_TRAININGJOB_UID,
    MANAGED_BY,
    MANAGED_BY_VALUE,
)
from perennial_operator.api.names import modelversion_name


def _signature(raw: Any) -> dict[str, Any]:
    """The runtime sends input names (or only a count when they do not fit)."""
    if not isinstance(raw, dict):
        return {}
    out: dict[str, Any] = {}
    for key in ("inputs", "outputs"):
        items = raw.get(key)
        if isinstance(items, list):
            out[key] = [
                item if isinstance(item, dict) else {"name": str(item)} for item in items[:4096]
            ]
    return out


def modelversion_for(
    tj: dict[str, Any], result: dict[str, Any], artifact_uri: str, version: int, image: str
) -> dict[str, Any]:
    meta, spec = tj["metadata"], tj["spec"]
    artifact = result.get("artifact") or {}
    dataset = result.get("dataset") or {}
    return {
        "apiVersion": API_VERSION,
        "kind": "ModelVersion",
        "metadata": {
            "name": modelversion_name(spec["model"], version),
            "namespace": meta["namespace"],
            "labels": {
                MANAGED_BY: MANAGED_BY_VALUE,
                LABEL_MODEL: spec["model"],
                LABEL_TRAININGJOB: meta["name"],
                LABEL_TRAININGJOB_UID: meta["uid"],
            },
        },
        "spec": {
            "model": spec["model"],
            "version": version,
            "stage": "None",
            "artifact": {
                "uri": artifact_uri,
                "sha256": artifact.get("sha256", ""),
                "format": artifact.get("format", "skops"),
            },
            "signature": _signature(result.get("signature")),
            "metrics": {
                k: v for k, v in (result.get("metrics") or {}).items() if isinstance(v, int | float)
            },
            "source": {
                "trainingJob": meta["name"],
                "dataset": {
                    "uri": dataset.get("uri", spec["dataset"]["uri"]),
                    "sha256": dataset.get("sha256", ""),
                    "rows": int(dataset.get("rows", 0)),
                },
                "algorithm": str(result.get("algorithm") or spec.get("algorithm", "auto")),
                "task": str(spec.get("task", "")),
                "hyperparameters": dict(result.get("hyperparameters") or {}),
                "image": image,
            },
        },
    }


def stage_change(namespace: str, name: str, stage: str) -> dict[str, Any]:
    """The apply body that moves a ModelVersion to `stage` (our field manager owns the field)."""
    return {
        "apiVersion": API_VERSION,
        "kind": "ModelVersion",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"stage": stage},
    }
