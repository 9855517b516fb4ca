"""InferenceService -> its children: Deployments (stable, canary), a Service, an HPA.

Names are fixed per role, not per version: `<name>-stable` and `<name>-canary`. A Rolling
update is then the stable Deployment's own rolling update, a superseding canary simply
re-templates `<name>-canary`, and the HPA keeps one scale target. Both Deployments' pods
carry the service label, and the Service selects on it alone, so traffic follows the
replica ratio. Pure: the same inputs always give the same manifests.
"""

from __future__ import annotations

from typing import Any

from perennial_operator.api.group import (
    LABEL_INFERENCESERVICE,
    LABEL_MODEL,
    LABEL_MODEL_VERSION,
    LABEL_TRACK,
    child_labels,
)
from perennial_operator.api.names import SERVER_CONTAINER, child_name
from perennial_operator.api.tracks import STABLE
from perennial_operator.config import OperatorConfig
from perennial_operator.desired.common import (
    owner_reference,
    resource_requirements,
    restricted_container_security,
    restricted_pod_security,
)
from perennial_operator.desired.placement import Placement
from perennial_operator.desired.trainingjob import pod_identity

SERVE_PORT = 8080
PVC_ROOT = "/mnt/pvc"
COPY_DIR = "/tmp/model"  # where an object-store model is copied (the /tmp emptyDir)
FEEDBACK_TOKEN_DIR = "/var/run/secrets/perennial/feedback"
RPS_METRIC = "perennial_requests_per_second"  # served by a custom-metrics adapter


def deployment_name(isvc: dict[str, Any], track: str) -> str:
    return child_name(isvc["metadata"]["name"], track)


def selector(isvc: dict[str, Any], track: str | None = None) -> dict[str, str]:
    """Only our own labels: Deployment selectors are immutable, user labels never enter."""
    labels = {LABEL_INFERENCESERVICE: isvc["metadata"]["name"]}
    if track:
        labels[LABEL_TRACK] = track
    return labels


def _meta(isvc: dict[str, Any], name: str, labels: dict[str, str]) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": isvc["metadata"]["namespace"],
        "labels": labels,
        "ownerReferences": [owner_reference(isvc)],
    }


def _model_dir(mv: dict[str, Any]) -> tuple[str | None, str]:
    """(claim, directory in the pod) of the artifact: a pvc://<claim>/<path> is mounted;
    an object-store URI (s3://, gs://) has no claim and is copied into COPY_DIR (an
    emptyDir) by the server itself, which verifies it before it is ready."""
    uri = str(mv["spec"]["artifact"]["uri"])
    if not uri.startswith("pvc://"):
        return None, COPY_DIR
    claim, _, path = uri.removeprefix("pvc://").partition("/")
    return claim, f"{PVC_ROOT}/{claim}/{path}".rstrip("/")


# A deleted serving pod leaves the Service's endpoints at once, but kube-proxy (or a
# gateway) learns it a moment later (kube-proxy syncs at most once a second): the pod keeps
# accepting for DRAIN_DELAY_SECONDS (preStop sleep) before the server is told to stop, then
# answers what it has read within GRACEFUL_SECONDS. Without the delay, requests routed to a
# pod scaled away (a canary step, a rollback, a scale-down) were refused (issue 20, e2e
# test_canary_rollback_under_load: 12 of ~1,000 requests).
DRAIN_DELAY_SECONDS = 5
GRACEFUL_SECONDS = 20
TERMINATION_GRACE_SECONDS = DRAIN_DELAY_SECONDS + GRACEFUL_SECONDS + 5


def _args(isvc: dict[str, Any], mv: dict[str, Any]) -> list[str]:
    """The server's whole command line: perennial-serve and its flags."""
    spec, artifact = isvc["spec"], mv["spec"]["artifact"]
    batching = spec.get("batching") or {}
    args = [
        "perennial-serve",
        "--model-dir", _model_dir(mv)[1],
        "--port", str(SERVE_PORT),
        "--name", str(spec["model"]["name"]),
        "--model-version", str(mv["spec"]["version"]),
        "--expected-sha256", str(artifact["sha256"]),
        "--max-batch-size", str(batching.get("maxBatchSize", 64)),
        "--max-latency-ms", str(batching.get("maxLatencyMs", 2)),
        "--graceful-timeout", str(GRACEFUL_SECONDS),
    ]  # fmt: skip
    if _model_dir(mv)[0] is None:
        args += ["--model-uri", str(artifact["uri"])]
    if artifact.get("allowUnsafePickle"):
        args.append("--allow-unsafe-pickle")
    feedback = (spec.get("monitoring") or {}).get("feedback") or {}
    if feedback.get("tokenSecretName"):
        args += ["--feedback-token-file", f"{FEEDBACK_TOKEN_DIR}/token"]
    elif feedback.get("allowUnauthenticated"):
        args.append("--allow-unauthenticated-feedback")
    return args


def _feedback_secret(isvc: dict[str, Any]) -> str:
    """The Secret whose `token` key feedback must carry; empty: none mounted."""
    feedback = (isvc["spec"].get("monitoring") or {}).get("feedback") or {}
    return str(feedback.get("tokenSecretName") or "")


def _probe(path: str, period: int, failures: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": "http"},
        "periodSeconds": period,
        "timeoutSeconds": 2,
        "failureThreshold": failures,
    }


def _container(
    isvc: dict[str, Any], mv: dict[str, Any], config: OperatorConfig, placement: Placement
) -> dict[str, Any]:
    spec = isvc["spec"]
    resources = spec.get("resources") or {}
    gpus = placement.gpus_for(int(resources.get("gpu", 0) or 0))
    claim = _model_dir(mv)[0]
    return {
        "name": SERVER_CONTAINER,
        "image": str(spec.get("image") or config.runtime_image),
        # The program in `command` replaces the image's ENTRYPOINT (perennial-train in the
        # runtime image); its flags go in `args`.
        "command": _args(isvc, mv)[:1],
        "args": _args(isvc, mv)[1:],
        "ports": [{"name": "http", "containerPort": SERVE_PORT, "protocol": "TCP"}],
        "env": [{"name": "HOME", "value": "/tmp"}],
        "resources": resource_requirements(
            {"cpu": resources.get("cpu", "500m"), "memory": resources.get("memory", "512Mi")}, gpus
        ),
        # Loading a model and checking its sha256 can take a while: the startup probe
        # gives it five minutes before liveness may restart the pod.
        "startupProbe": _probe("/v2/health/live", 5, 60),
        "livenessProbe": _probe("/v2/health/live", 10, 3),
        "readinessProbe": _probe("/v2/health/ready", 5, 2),
        "lifecycle": {"preStop": {"sleep": {"seconds": DRAIN_DELAY_SECONDS}}},
        "volumeMounts": [
            *(
                [{"name": "model", "mountPath": f"{PVC_ROOT}/{claim}", "readOnly": True}]
                if claim
                else []
            ),
            {"name": "tmp", "mountPath": "/tmp"},
            *(
                [{"name": "feedback-token", "mountPath": FEEDBACK_TOKEN_DIR, "readOnly": True}]
                if _feedback_secret(isvc)
                else []
            ),
        ],
        "securityContext": restricted_container_security(),
        **({"envFrom": [dict(s) for s in spec["envFrom"]]} if spec.get("envFrom") else {}),
    }


def _pod_template(
    isvc: dict[str, Any],
    track: str,
    mv: dict[str, Any],
    config: OperatorConfig,
    placement: Placement,
) -> dict[str, Any]:
    labels = {
        **child_labels("InferenceService", isvc["metadata"]["name"]),
        **selector(isvc, track),
        LABEL_MODEL: str(isvc["spec"]["model"]["name"]),
        LABEL_MODEL_VERSION: str(mv["spec"]["version"]),
    }
    annotations = {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": str(SERVE_PORT),
        "prometheus.io/path": "/metrics",
        **config.pod_annotations,
    }
    pod_spec: dict[str, Any] = {
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": restricted_pod_security(),
        "terminationGracePeriodSeconds": TERMINATION_GRACE_SECONDS,
        "containers": [_container(isvc, mv, config, placement)],
        "volumes": [
            *(
                [{"name": "model", "persistentVolumeClaim": {"claimName": claim, "readOnly": True}}]
                if (claim := _model_dir(mv)[0])
                else []
            ),
            {"name": "tmp", "emptyDir": {}},
        ],
    }
    pod_identity(isvc["spec"], pod_spec)
    if secret := _feedback_secret(isvc):
        # Only the token key, read-only: the server reads it once at start (a rotated token
        # reaches the pods when they restart).
        pod_spec["volumes"].append(
            {
                "name": "feedback-token",
                "secret": {"secretName": secret, "items": [{"key": "token", "path": "token"}]},
            }
        )
    if placement.node_selector:
        pod_spec["nodeSelector"] = dict(placement.node_selector)
    if placement.tolerations:
        pod_spec["tolerations"] = [dict(t) for t in placement.tolerations]
    return {"metadata": {"labels": labels, "annotations": annotations}, "spec": pod_spec}


def deployment(
    isvc: dict[str, Any],
    track: str,
    mv: dict[str, Any],
    replicas: int | None,
    config: OperatorConfig,
    placement: Placement,
) -> dict[str, Any]:
    """`replicas=None` leaves spec.replicas out of our apply, so an HPA can own it."""
    template = _pod_template(isvc, track, mv, config, placement)
    spec: dict[str, Any] = {
        "selector": {"matchLabels": selector(isvc, track)},
        "strategy": {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxUnavailable": 0, "maxSurge": "25%"},
        },
        "revisionHistoryLimit": 3,
        "template": template,
    }
    if replicas is not None:
        spec["replicas"] = replicas
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(isvc, deployment_name(isvc, track), template["metadata"]["labels"]),
        "spec": spec,
    }


def service(isvc: dict[str, Any]) -> dict[str, Any]:
    name = isvc["metadata"]["name"]
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(isvc, name, child_labels("InferenceService", name)),
        "spec": {
            "type": "ClusterIP",
            "selector": selector(isvc),
            "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}],
        },
    }


def hpa(isvc: dict[str, Any]) -> dict[str, Any] | None:
    """autoscaling/v2 on the stable Deployment, or None without spec.autoscaling."""
    auto = isvc["spec"].get("autoscaling")
    if not auto:
        return None
    metrics: list[dict[str, Any]] = []
    if auto.get("targetCPUUtilization"):
        target = {"type": "Utilization", "averageUtilization": int(auto["targetCPUUtilization"])}
        metrics.append({"type": "Resource", "resource": {"name": "cpu", "target": target}})
    if auto.get("targetRequestsPerSecond"):
        target = {"type": "AverageValue", "averageValue": str(auto["targetRequestsPerSecond"])}
        metric = {"metric": {"name": RPS_METRIC}, "target": target}
        metrics.append({"type": "Pods", "pods": metric})
    name = isvc["metadata"]["name"]
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": _meta(isvc, name, child_labels("InferenceService", name)),
        "spec": {
            "scaleTargetRef": {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "name": deployment_name(isvc, STABLE),
            },
            "minReplicas": int(auto.get("minReplicas", 1)),
            "maxReplicas": int(auto["maxReplicas"]),
            "metrics": metrics,
        },
    }
