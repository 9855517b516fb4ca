"""The artifact claim: the PersistentVolumeClaim a namespace's TrainingJobs write models to
and its InferenceServices read them from. Pure.

The operator creates it when a TrainingJob needs the default claim and it is missing, from
the configured StorageClass, access mode and size. It has no owner: it holds every model
the namespace trained, so it outlives any one TrainingJob (deleting it is the user's call).
A claim named in spec.artifacts.pvc is the user's own and is never created.
"""

from __future__ import annotations

from typing import Any

from perennial_operator.api.group import GROUP
from perennial_operator.config import OperatorConfig

LABEL_ROLE = f"{GROUP}/role"


def artifact_claim(namespace: str, config: OperatorConfig) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "accessModes": [config.artifact_access_mode],
        "resources": {"requests": {"storage": config.artifact_size}},
    }
    if config.artifact_storage_class is not None:
        spec["storageClassName"] = config.artifact_storage_class  # "" means no class at all
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {
            "name": config.artifact_pvc,
            "namespace": namespace,
            "labels": {"app.kubernetes.io/managed-by": "perennial", LABEL_ROLE: "artifacts"},
        },
        "spec": spec,
    }


def creates_claim(tj: dict[str, Any], config: OperatorConfig) -> bool:
    """Is the job's artifact claim the operator's default one, which it creates?"""
    named = (tj["spec"].get("artifacts") or {}).get("pvc")
    return config.create_artifact_claim and named in (None, "", config.artifact_pvc)
