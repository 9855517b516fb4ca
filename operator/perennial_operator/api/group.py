"""Group, version, kinds, and every label and annotation the operator reads or writes."""

from __future__ import annotations

from typing import Final

GROUP: Final = "perennial.dev"
VERSION: Final = "v1alpha1"
API_VERSION: Final = f"{GROUP}/{VERSION}"

TRAININGJOBS: Final = "trainingjobs"
MODELVERSIONS: Final = "modelversions"
INFERENCESERVICES: Final = "inferenceservices"
RETRAINPOLICIES: Final = "retrainpolicies"
COMPUTEPOOLS: Final = "computepools"

FIELD_MANAGER: Final = "perennial"

MANAGED_BY: Final = "app.kubernetes.io/managed-by"
MANAGED_BY_VALUE: Final = "perennial"
LABEL_TRAININGJOB: Final = f"{GROUP}/trainingjob"
LABEL_TRAININGJOB_UID: Final = f"{GROUP}/trainingjob-uid"
LABEL_MODEL: Final = f"{GROUP}/model"
LABEL_INFERENCESERVICE: Final = f"{GROUP}/inferenceservice"
LABEL_COMPUTEPOOL: Final = f"{GROUP}/compute-pool"
# InferenceService pods: which track (stable, canary) and which model version they run.
LABEL_TRACK: Final = f"{GROUP}/track"
LABEL_MODEL_VERSION: Final = f"{GROUP}/model-version"
LABEL_RETRAINPOLICY: Final = f"{GROUP}/retrainpolicy"
# One value per trigger: a restarted operator finds the job of a recorded trigger by it.
LABEL_TRIGGER: Final = f"{GROUP}/retrain-trigger"
# On a RetrainPolicy's newData probe Job and its pod: the Job's name, so the pod is found by it.
LABEL_PROBE: Final = f"{GROUP}/newdata-probe"
LABEL_GPU_TYPE: Final = f"{GROUP}/gpu-type"

ANNOTATION_RETRAIN_REASON: Final = f"{GROUP}/retrain-reason"
# ComputePool nodes: when the node was first seen idle, and that we (not a human) cordoned it.
ANNOTATION_IDLE_SINCE: Final = f"{GROUP}/idle-since"
ANNOTATION_CORDONED_FOR_REMOVAL: Final = f"{GROUP}/cordoned-for-removal"
# A kwok node's pool, by uid: an annotation, not an ownerReference, so that no deletion of
# the pool (foreground cascade included) lets the garbage collector take nodes undrained.
ANNOTATION_COMPUTEPOOL_UID: Final = f"{GROUP}/compute-pool-uid"
# On a ComputePool being deleted: drain even nodes that serve an InferenceService.
ANNOTATION_FORCE_DELETE: Final = f"{GROUP}/force-delete"


def child_labels(kind: str, name: str) -> dict[str, str]:
    """Labels on every child: who manages it and which resource it belongs to."""
    return {MANAGED_BY: MANAGED_BY_VALUE, f"{GROUP}/{kind.lower()}": name}
