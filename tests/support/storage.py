"""A bound PersistentVolumeClaim for tests: training pods mount the artifact claim, and the
scheduler will not place a pod whose claim is missing or unbound. The local control plane has
no storage provisioner, so a PersistentVolume is pre-bound to the claim by name."""

from __future__ import annotations

from perennial_operator.k8s.kube import Kube


def bound_claim(kube: Kube, namespace: str, claim: str, host_path: str, size: str = "1Gi") -> None:
    volume = f"{namespace}-{claim}"[:63]
    kube.create(
        {
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {"name": volume},
            "spec": {
                "capacity": {"storage": size},
                "accessModes": ["ReadWriteMany"],
                "persistentVolumeReclaimPolicy": "Delete",
                "storageClassName": "",
                "hostPath": {"path": host_path},
                "claimRef": {"namespace": namespace, "name": claim},
            },
        }
    )
    kube.create(
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": claim, "namespace": namespace},
            "spec": {
                "accessModes": ["ReadWriteMany"],
                "storageClassName": "",
                "volumeName": volume,
                "resources": {"requests": {"storage": size}},
            },
        }
    )
