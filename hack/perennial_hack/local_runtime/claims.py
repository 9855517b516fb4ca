"""Storage for locally run pods: a PersistentVolume per claim, pre-bound to its claim.

The scheduler will not place a pod whose PersistentVolumeClaim is missing or unbound, and
the local cluster has no provisioner; so the e2e tests and the demo create the claims the
operator's pods mount, each bound to a hostPath PV naming the folder the local runtime
uses for it (<state>/pvc/<namespace>/<claim>). Nothing ever mounts the hostPath: the PV
records where the data lives.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from perennial_hack.local_runtime.api import Api
from perennial_hack.local_runtime.volumes import Layout

STORAGE_CLASS = "perennial-local"


def pv_name(namespace: str, claim: str) -> str:
    return f"perennial-local-{namespace}-{claim}"[:253]


def claim_manifests(
    namespace: str, claim: str, folder: Path, size: str = "10Gi"
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(PersistentVolume, PersistentVolumeClaim), each naming the other, so the
    PersistentVolume controller binds them at once."""
    pv = {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": pv_name(namespace, claim), "labels": {"perennial.dev/local": "true"}},
        "spec": {
            "capacity": {"storage": size},
            "accessModes": ["ReadWriteMany"],
            "persistentVolumeReclaimPolicy": "Retain",
            "storageClassName": STORAGE_CLASS,
            "hostPath": {"path": str(folder), "type": "DirectoryOrCreate"},
            "claimRef": {"namespace": namespace, "name": claim},
        },
    }
    pvc = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": claim, "namespace": namespace},
        "spec": {
            "accessModes": ["ReadWriteMany"],
            "storageClassName": STORAGE_CLASS,
            "resources": {"requests": {"storage": size}},
            "volumeName": pv_name(namespace, claim),
        },
    }
    return pv, pvc


def ensure_claim(api: Api, layout: Layout, namespace: str, claim: str) -> Path:
    """Create the claim and its PV (if missing) and the local folder; return the folder."""
    folder = layout.pvc(namespace, claim)
    folder.mkdir(parents=True, exist_ok=True)
    pv, pvc = claim_manifests(namespace, claim, folder)
    api.create("/api/v1/persistentvolumes", pv)
    api.create(f"/api/v1/namespaces/{namespace}/persistentvolumeclaims", pvc)
    return folder


def claim_bound(api: Api, namespace: str, claim: str) -> bool:
    pvc = api.get(f"/api/v1/namespaces/{namespace}/persistentvolumeclaims/{claim}") or {}
    return (pvc.get("status") or {}).get("phase") == "Bound"


def delete_volume(api: Api, namespace: str, claim: str) -> None:
    """The PV outlives its namespace (it is cluster-scoped): tests remove it themselves."""
    try:
        api.call("DELETE", f"/api/v1/persistentvolumes/{pv_name(namespace, claim)}")
    except Exception as err:  # best effort: a leftover PV only holds a name
        if getattr(err, "code", None) != 404:
            raise
