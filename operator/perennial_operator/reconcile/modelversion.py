"""ModelVersion use case: check what the schema cannot, set status, keep one Production
version per model, and record every stage change as an Event."""

from __future__ import annotations

import logging
from typing import Any

from perennial_operator import metrics
from perennial_operator.api.group import API_VERSION
from perennial_operator.api.rejections import LEGACY_FIELD, legacy_records
from perennial_operator.decide.modelversion.registry import (
    ARCHIVED,
    PRODUCTION,
    versions_to_archive,
)
from perennial_operator.decide.modelversion.status import modelversion_status, recorded_stage
from perennial_operator.desired.modelversion import stage_change
from perennial_operator.k8s.kube import KubeApi, now_iso
from perennial_operator.reconcile.versions import raise_high_water

log = logging.getLogger(__name__)


def sync_modelversion(kube: KubeApi, mv: dict[str, Any]) -> dict[str, Any]:
    """Level-triggered: a stage change not recorded in status.stageHistory yet is handled
    (its Event, the archiving) before the status that records it is written; a crash in
    between handles it again (an Event repeated, an archive applied again: no harm)."""
    _move_legacy_rejections(kube, mv)
    stage_changed(kube, mv, recorded_stage(mv), mv["spec"].get("stage"))
    meta, spec = mv["metadata"], mv["spec"]
    # Every version seen raises the model's mark: one registered just before a crash, or
    # created by hand, is never numbered again once deleted.
    raise_high_water(kube, meta["namespace"], str(spec["model"]), int(spec["version"]))
    status = modelversion_status(mv, now_iso())
    if status != (mv.get("status") or {}):
        kube.patch_status(API_VERSION, "ModelVersion", meta["namespace"], meta["name"], status)
    return status


def _move_legacy_rejections(kube: KubeApi, mv: dict[str, Any]) -> None:
    """status.rejections of an object written before rejections were annotations: copy them
    to annotations first, then drop the field (a crash in between repeats the copy)."""
    if not (mv.get("status") or {}).get(LEGACY_FIELD):
        return
    meta = mv["metadata"]
    notes = legacy_records(mv)
    if notes:
        kube.patch(
            API_VERSION,
            "ModelVersion",
            meta["namespace"],
            meta["name"],
            {"metadata": {"annotations": notes}},
        )
    kube.patch_status(
        API_VERSION, "ModelVersion", meta["namespace"], meta["name"], {LEGACY_FIELD: None}
    )
    meta["annotations"] = {**(meta.get("annotations") or {}), **notes}
    mv["status"] = {k: v for k, v in mv["status"].items() if k != LEGACY_FIELD}


def stage_changed(kube: KubeApi, mv: dict[str, Any], old: str | None, new: str | None) -> list[str]:
    """Record the change; when a version becomes Production, archive the previous one(s)."""
    meta, spec = mv["metadata"], mv["spec"]
    if (old or "None") == (new or "None"):
        return []
    kube.event(mv, "Normal", "StageChanged", f"stage {old or 'None'} -> {new or 'None'}")
    log.info(
        "ModelVersion %s/%s: stage %s -> %s", meta["namespace"], meta["name"], old or "None", new
    )
    metrics.STAGE_CHANGES.labels(model=spec["model"], stage=str(new)).inc()
    if new != PRODUCTION:
        return []
    siblings = kube.list(API_VERSION, "ModelVersion", meta["namespace"])
    archived = versions_to_archive(mv, siblings)
    for name in archived:
        kube.apply(stage_change(meta["namespace"], name, ARCHIVED))
        sibling = next(s for s in siblings if s["metadata"]["name"] == name)
        log.info("ModelVersion %s/%s: archived (%s is Production)", meta["namespace"], name,
                 meta["name"])  # fmt: skip
        kube.event(
            sibling,
            "Normal",
            "StageChanged",
            f"stage {PRODUCTION} -> {ARCHIVED}: {meta['name']} was promoted to Production",
        )
    return archived
