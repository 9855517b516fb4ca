"""Operator settings: read once at start-up from flags and environment, then passed down."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

DEFAULT_RUNTIME_IMAGE = "perennial/runtime:0.1.0"
DEFAULT_ARTIFACT_PVC = "perennial-artifacts"
_TRUE = ("1", "true", "yes", "on")


@dataclass(frozen=True)
class OperatorConfig:
    runtime_image: str = DEFAULT_RUNTIME_IMAGE
    artifact_pvc: str = DEFAULT_ARTIFACT_PVC
    # The artifact claim is created per namespace when missing (desired/artifacts.py):
    # StorageClass None = the cluster's default class; "" = no class (a pre-made PV).
    create_artifact_claim: bool = True
    artifact_storage_class: str | None = None
    artifact_access_mode: str = "ReadWriteOnce"
    artifact_size: str = "10Gi"
    # Extra annotations put on every pod the operator creates (e.g. for a local runtime).
    pod_annotations: dict[str, str] = field(default_factory=dict)
    metrics_port: int = 9090
    # Safety-net rescan of every ComputePool; pod events wake a pool at once anyway.
    computepool_resync_seconds: float = 10.0
    # How the operator reaches a serving pod ({ip}, {port}); tests point it at loopback.
    pod_url_template: str = "http://{ip}:{port}"
    # ttlSecondsAfterFinished of training Jobs: the TrainingJob records what it needs when
    # the Job finishes; the pods stay this long for `perennial logs`.
    training_job_ttl_seconds: int = 86400

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> OperatorConfig:
        env = dict(os.environ) if env is None else env
        annotations = json.loads(env.get("PERENNIAL_POD_ANNOTATIONS", "{}") or "{}")
        if not isinstance(annotations, dict):
            raise ValueError("PERENNIAL_POD_ANNOTATIONS must be a JSON object")
        return cls(
            runtime_image=env.get("PERENNIAL_RUNTIME_IMAGE", DEFAULT_RUNTIME_IMAGE),
            artifact_pvc=env.get("PERENNIAL_ARTIFACT_PVC", DEFAULT_ARTIFACT_PVC),
            create_artifact_claim=env.get("PERENNIAL_ARTIFACT_CLAIM_CREATE", "true").lower()
            in _TRUE,
            artifact_storage_class=env.get("PERENNIAL_ARTIFACT_STORAGE_CLASS"),
            artifact_access_mode=env.get("PERENNIAL_ARTIFACT_ACCESS_MODE", "ReadWriteOnce"),
            artifact_size=env.get("PERENNIAL_ARTIFACT_SIZE", "10Gi"),
            pod_annotations={str(k): str(v) for k, v in annotations.items()},
            metrics_port=int(env.get("PERENNIAL_METRICS_PORT", "9090")),
            computepool_resync_seconds=float(env.get("PERENNIAL_COMPUTEPOOL_RESYNC_SECONDS", "10")),
            pod_url_template=env.get("PERENNIAL_POD_URL_TEMPLATE", "http://{ip}:{port}"),
            training_job_ttl_seconds=int(env.get("PERENNIAL_TRAINING_JOB_TTL_SECONDS", "86400")),
        )
