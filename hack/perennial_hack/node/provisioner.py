"""Dynamic PersistentVolumes for the real node: what local-path-provisioner is in kind.

The node's StorageClass `perennial-local` is the cluster's default. A claim of that class
with no volume yet gets a hostPath PV on the node: a folder <root>/<namespace>/<claim>
(mode 0777, as local-path-provisioner makes them, so non-root pods may write) bound to it
through claimRef. Volumes are Retained: a deleted claim leaves its folder (and PV) behind,
like a Retain class anywhere. What it does not do: capacity limits, access-mode checks
(every volume is one folder on one node), deletion.

    python -m perennial_hack.node.provisioner --kubeconfig K --root DIR
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from perennial_hack.local_runtime.api import Api, ApiError
from perennial_hack.local_runtime.claims import STORAGE_CLASS

PROVISIONER = "perennial.dev/local-node"
INTERVAL_S = 1.0
log = logging.getLogger("perennial.provisioner")


def storage_class() -> dict[str, Any]:
    return {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {
            "name": STORAGE_CLASS,
            "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
        },
        "provisioner": PROVISIONER,
        "reclaimPolicy": "Retain",
        "volumeBindingMode": "Immediate",
    }


def wants_volume(pvc: dict[str, Any]) -> bool:
    spec, status = pvc.get("spec") or {}, pvc.get("status") or {}
    return (
        spec.get("storageClassName") == STORAGE_CLASS
        and not spec.get("volumeName")
        and status.get("phase", "Pending") == "Pending"
        and not pvc["metadata"].get("deletionTimestamp")
    )


def volume_name(pvc: dict[str, Any]) -> str:
    return f"pvc-{pvc['metadata']['uid']}"


def volume_for(pvc: dict[str, Any], folder: Path) -> dict[str, Any]:
    meta, spec = pvc["metadata"], pvc["spec"]
    size = ((spec.get("resources") or {}).get("requests") or {}).get("storage", "1Gi")
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {
            "name": volume_name(pvc),
            "annotations": {"pv.kubernetes.io/provisioned-by": PROVISIONER},
            "labels": {"perennial.dev/local": "true"},
        },
        "spec": {
            "capacity": {"storage": size},
            "accessModes": list(spec.get("accessModes") or ["ReadWriteOnce"]),
            "persistentVolumeReclaimPolicy": "Retain",
            "storageClassName": STORAGE_CLASS,
            "hostPath": {"path": str(folder), "type": "DirectoryOrCreate"},
            "claimRef": {"namespace": meta["namespace"], "name": meta["name"], "uid": meta["uid"]},
        },
    }


def provision_once(api: Api, root: Path) -> list[str]:
    """One pass: a volume for every claim that wants one; the names of the volumes made."""
    made = []
    for pvc in api.call("GET", "/api/v1/persistentvolumeclaims").get("items", []):
        if not wants_volume(pvc):
            continue
        folder = root / pvc["metadata"]["namespace"] / pvc["metadata"]["name"]
        folder.mkdir(parents=True, exist_ok=True)
        folder.chmod(0o777)
        if api.create("/api/v1/persistentvolumes", volume_for(pvc, folder)):
            made.append(volume_name(pvc))
            log.info(
                "volume %s for %s/%s at %s",
                volume_name(pvc),
                pvc["metadata"]["namespace"],
                pvc["metadata"]["name"],
                folder,
            )
    return made


def run(api: Api, root: Path, stop: threading.Event) -> None:
    api.create("/apis/storage.k8s.io/v1/storageclasses", storage_class())
    log.info("provisioning class %s into %s", STORAGE_CLASS, root)
    while not stop.is_set():
        try:
            provision_once(api, root)
        except (ApiError, OSError, ValueError) as err:
            log.warning("provisioning: %s; retrying", err)
        stop.wait(INTERVAL_S)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m perennial_hack.node.provisioner")
    p.add_argument("--kubeconfig", required=True)
    p.add_argument("--root", required=True, type=Path)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    run(Api(args.kubeconfig), args.root, stop)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
