"""PersistentVolumes for the real node: a hostPath folder per claim, pre-bound to it.

The local cluster has no provisioner, so what local-path-provisioner does in kind is done
here: a folder under the node's volumes/ (mode 0777, as local-path-provisioner makes
them, so the pods' non-root user may write), and a PV naming it and the claim. The kubelet
really mounts it (read-only where the pod says so); the folder is what tests read.
"""

from __future__ import annotations

from pathlib import Path

from perennial_hack.local_runtime.api import Api
from perennial_hack.local_runtime.claims import claim_manifests
from perennial_hack.node.config import Layout


def claim_folder(layout: Layout, namespace: str, claim: str) -> Path:
    return layout.volumes / namespace / claim


def ensure_claim(api: Api, layout: Layout, namespace: str, claim: str, size: str = "10Gi") -> Path:
    """Create the claim and its PV (if missing) and the folder; return the folder."""
    folder = claim_folder(layout, namespace, claim)
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o777)
    pv, pvc = claim_manifests(namespace, claim, folder, size)
    api.create("/api/v1/persistentvolumes", pv)
    api.create(f"/api/v1/namespaces/{namespace}/persistentvolumeclaims", pvc)
    return folder
