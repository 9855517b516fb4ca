"""The namespace's artifact claim, created before the first pod that writes a model to it
(the single training Job, or the plan step of a fanned-out search)."""

from __future__ import annotations

import logging
from typing import Any

from perennial_operator.config import OperatorConfig
from perennial_operator.desired.artifacts import artifact_claim, creates_claim
from perennial_operator.k8s.errors import AlreadyExists
from perennial_operator.k8s.kube import KubeApi

log = logging.getLogger(__name__)


def ensure_artifact_claim(kube: KubeApi, tj: dict[str, Any], config: OperatorConfig) -> None:
    """Create the namespace's artifact claim if missing; an existing one is never changed."""
    namespace = tj["metadata"]["namespace"]
    if not creates_claim(tj, config):
        return
    if kube.get("v1", "PersistentVolumeClaim", namespace, config.artifact_pvc) is not None:
        return
    try:
        kube.create(artifact_claim(namespace, config))
    except AlreadyExists:
        return  # another TrainingJob's sync made it first
    log.info("created PersistentVolumeClaim %s/%s for models", namespace, config.artifact_pvc)
