"""The namespace's artifact claim, created before the first pod that writes a model to it
(the single training Job, or the plan step of a fanned-out search)."""

from __future__ import annotations

import logging
from typing import Any

from perennial_operator.config import OperatorConfig
from perennial_operator.desired.artifacts import artifact_claim, creates_claim
from perennial_operator.k8s.errors import AlreadyExists
from perennial_operator.k8s.kube import KubeApi
from perennial_operator.reconcile.child_view import ChildView

log = logging.getLogger(__name__)


def ensure_artifact_claim(
    kube: KubeApi, tj: dict[str, Any], config: OperatorConfig, view: ChildView | None = None
) -> None:
    """Create the namespace's artifact claim if missing; an existing one is never changed.
    With a view, a claim it saw lately is not read again."""
    namespace = tj["metadata"]["namespace"]
    if not creates_claim(tj, config):
        return
    if view is not None and view.claim_known(namespace, config.artifact_pvc):
        return
    if kube.get("v1", "PersistentVolumeClaim", namespace, config.artifact_pvc) is not None:
        if view is not None:
            view.saw_claim(namespace, config.artifact_pvc)
        return
    try:
        kube.create(artifact_claim(namespace, config))
    except AlreadyExists:
        return  # another TrainingJob's sync made it first
    if view is not None:
        view.saw_claim(namespace, config.artifact_pvc)
    log.info("created PersistentVolumeClaim %s/%s for models", namespace, config.artifact_pvc)
