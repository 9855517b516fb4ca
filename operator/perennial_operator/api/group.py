"""Group, version, kinds and the labels every child carries."""

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


def child_labels(kind: str, name: str) -> dict[str, str]:
    """Labels on every child: who manages it and which resource it belongs to."""
    return {MANAGED_BY: MANAGED_BY_VALUE, f"{GROUP}/{kind.lower()}": name}
