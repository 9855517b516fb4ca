"""ModelVersion triggers: status on every change, and stage changes."""

from __future__ import annotations

from typing import Any

import kopf

from perennial_operator.api.group import GROUP, MODELVERSIONS, VERSION
from perennial_operator.k8s.errors import as_kopf_errors
from perennial_operator.reconcile.modelversion import stage_changed, sync_modelversion


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
        # A stage written while kopf still works through the creation is handled here only
        # (reconcile_modelversion already succeeded for generation 1 and kopf does not run
        # it again): recompute the status too, so observedGeneration and stageHistory follow.
        sync_modelversion(memo.kube, dict(body))
