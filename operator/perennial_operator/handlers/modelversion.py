"""ModelVersion triggers: status on every change, stage changes, and an index by model."""

from __future__ import annotations

from typing import Any

import kopf

from perennial_operator.api.group import GROUP, MODELVERSIONS, VERSION
from perennial_operator.k8s.errors import as_kopf_errors
from perennial_operator.reconcile.modelversion import stage_changed, sync_modelversion


@kopf.index(GROUP, VERSION, MODELVERSIONS)
def modelversions_by_model(
    namespace: str | None, name: str, spec: kopf.Spec, status: kopf.Status, **_: Any
) -> dict[tuple[str, str], dict[str, Any]]:
    """(namespace, model) -> small summaries; the InferenceService resolver reads this."""
    return {
        (str(namespace), str(spec.get("model"))): {
            "name": name,
            "version": int(spec.get("version", 0)),
            "stage": spec.get("stage", "None"),
            "phase": status.get("phase"),
        }
    }


@kopf.on.resume(GROUP, VERSION, MODELVERSIONS)
@kopf.on.create(GROUP, VERSION, MODELVERSIONS)
@kopf.on.update(GROUP, VERSION, MODELVERSIONS)
def reconcile_modelversion(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    with as_kopf_errors(f"ModelVersion {body.metadata.namespace}/{body.metadata.name}"):
        sync_modelversion(memo.kube, dict(body))


@kopf.on.field(GROUP, VERSION, MODELVERSIONS, field="spec.stage")
def on_stage_change(body: kopf.Body, old: Any, new: Any, memo: kopf.Memo, **_: Any) -> None:
    with as_kopf_errors(f"ModelVersion {body.metadata.namespace}/{body.metadata.name}"):
        stage_changed(memo.kube, dict(body), old, new)
