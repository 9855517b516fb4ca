"""InferenceService children: the serving pod spec, selectors, Service and HPA."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from perennial_operator.api.tracks import CANARY, STABLE
from perennial_operator.config import OperatorConfig
from perennial_operator.desired import inferenceservice as d
from perennial_operator.desired.placement import NO_POOL, Placement

pytestmark = pytest.mark.unit

ISVC = {
    "apiVersion": "perennial.dev/v1alpha1",
    "kind": "InferenceService",
    "metadata": {"name": "churn", "namespace": "ml", "uid": "u-1", "generation": 1},
    "spec": {
        "model": {"name": "churn", "stage": "Production"},
        "replicas": 2,
        "batching": {"maxBatchSize": 64, "maxLatencyMs": 5},
        "resources": {"cpu": "250m", "memory": "256Mi", "gpu": 0},
    },
}
MV = {
    "metadata": {"name": "churn-v4"},
    "spec": {
        "model": "churn",
        "version": 4,
        "artifact": {"uri": "pvc://artifacts/models/churn/x", "sha256": "ab" * 32},
    },
}
CONFIG = OperatorConfig(
    runtime_image="perennial/runtime:t", pod_annotations={"kwok.x-k8s.io/status": "custom"}
)


def test_deployment_runs_perennial_serve_on_the_artifact() -> None:
    dep = d.deployment(ISVC, STABLE, MV, 2, CONFIG, NO_POOL)
    assert dep["metadata"]["name"] == "churn-stable"
    assert dep["metadata"]["ownerReferences"][0]["uid"] == "u-1"
    assert dep["spec"]["replicas"] == 2
    assert dep["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    pod = dep["spec"]["template"]
    (container,) = pod["spec"]["containers"]
    assert container["command"] == ["perennial-serve"]
    assert container["args"] == [
        "--model-dir", "/mnt/pvc/artifacts/models/churn/x", "--port", "8080",
        "--name", "churn", "--model-version", "4", "--expected-sha256", "ab" * 32,
        "--max-batch-size", "64", "--max-latency-ms", "5", "--graceful-timeout", "20",
    ]  # fmt: skip
    assert container["image"] == "perennial/runtime:t"
    # Deleted, the pod keeps accepting while the endpoints forget it, then drains; the
    # kubelet's grace period covers both.
    assert container["lifecycle"] == {"preStop": {"sleep": {"seconds": 5}}}
    assert pod["spec"]["terminationGracePeriodSeconds"] == 30 > 5 + 20
    assert container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    assert container["resources"]["requests"] == {"cpu": "250m", "memory": "256Mi"}
    assert {"name": "model", "mountPath": "/mnt/pvc/artifacts", "readOnly": True} in container[
        "volumeMounts"
    ]
    assert pod["spec"]["volumes"][0]["persistentVolumeClaim"] == {
        "claimName": "artifacts",
        "readOnly": True,
    }
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert pod["metadata"]["annotations"]["prometheus.io/scrape"] == "true"
    assert pod["metadata"]["annotations"]["kwok.x-k8s.io/status"] == "custom"
    assert pod["metadata"]["labels"]["perennial.dev/model-version"] == "4"


def test_selectors_hold_only_our_labels_and_the_service_spans_both_tracks() -> None:
    stable = d.deployment(ISVC, STABLE, MV, 1, CONFIG, NO_POOL)
    canary = d.deployment(ISVC, CANARY, MV, 1, CONFIG, NO_POOL)
    assert stable["spec"]["selector"]["matchLabels"] == {
        "perennial.dev/inferenceservice": "churn",
        "perennial.dev/track": "stable",
    }
    assert canary["metadata"]["name"] == "churn-canary"
    service = d.service(ISVC)
    assert service["spec"]["selector"] == {"perennial.dev/inferenceservice": "churn"}
    for dep in (stable, canary):
        labels = dep["spec"]["template"]["metadata"]["labels"]
        assert service["spec"]["selector"].items() <= labels.items()


def test_replicas_left_to_the_hpa() -> None:
    dep = d.deployment(ISVC, STABLE, MV, None, CONFIG, NO_POOL)
    assert "replicas" not in dep["spec"]


def test_hpa_only_with_autoscaling() -> None:
    assert d.hpa(ISVC) is None
    auto = {
        **ISVC,
        "spec": {
            **ISVC["spec"],
            "autoscaling": {
                "minReplicas": 2,
                "maxReplicas": 5,
                "targetCPUUtilization": 70,
                "targetRequestsPerSecond": 100,
            },
        },
    }
    hpa = d.hpa(auto)
    assert hpa is not None
    assert hpa["spec"]["scaleTargetRef"]["name"] == "churn-stable"
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 5)
    assert [m["type"] for m in hpa["spec"]["metrics"]] == ["Resource", "Pods"]


def test_compute_pool_placement() -> None:
    placement = Placement(
        {"pool": "gpu"}, [{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}], 4
    )
    pod = d.deployment(ISVC, STABLE, MV, 1, CONFIG, placement)["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"pool": "gpu"}
    assert pod["tolerations"][0]["key"] == "gpu"
    assert "nvidia.com/gpu" not in pod["containers"][0]["resources"]["limits"]  # not asked


def test_unsafe_pickle_is_passed_on_only_when_allowed() -> None:
    mv = {
        **MV,
        "spec": {**MV["spec"], "artifact": {**MV["spec"]["artifact"], "allowUnsafePickle": True}},
    }
    args = d.deployment(ISVC, STABLE, mv, 1, CONFIG, NO_POOL)["spec"]["template"]["spec"][
        "containers"
    ][0]["args"]
    assert args[-1] == "--allow-unsafe-pickle"


def test_service_account_and_env_from_reach_the_server() -> None:
    isvc = {
        **ISVC,
        "spec": {
            **ISVC["spec"],
            "serviceAccountName": "server",
            "envFrom": [{"secretRef": {"name": "gcs", "optional": True}}],
        },
    }
    pod = d.deployment(isvc, d.STABLE, MV, 1, CONFIG, NO_POOL)["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "server"
    assert pod["containers"][0]["envFrom"] == [{"secretRef": {"name": "gcs", "optional": True}}]
    plain = d.deployment(ISVC, d.STABLE, MV, 1, CONFIG, NO_POOL)["spec"]["template"]["spec"]
    assert "serviceAccountName" not in plain and "envFrom" not in plain["containers"][0]


def test_an_object_store_model_is_copied_by_the_server_not_mounted() -> None:
    mv = {
        **MV,
        "spec": {**MV["spec"], "artifact": {"uri": "s3://models/churn/v4", "sha256": "ab" * 32}},
    }
    pod = d.deployment(ISVC, d.STABLE, mv, 1, CONFIG, NO_POOL)["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    args = container["args"]
    assert args[args.index("--model-uri") + 1] == "s3://models/churn/v4"
    assert args[args.index("--model-dir") + 1] == d.COPY_DIR
    assert args[args.index("--expected-sha256") + 1] == "ab" * 32  # verified before ready
    assert [v["name"] for v in pod["volumes"]] == ["tmp"]
    assert [m["mountPath"] for m in container["volumeMounts"]] == ["/tmp"]


def _with_feedback(feedback: dict[str, object]) -> dict[str, object]:
    return {**ISVC, "spec": {**ISVC["spec"], "monitoring": {"feedback": feedback}}}


def test_feedback_is_refused_unless_a_token_secret_or_an_explicit_opt_out_is_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from perennial_runtime.serve.cli import parse_args

    monkeypatch.delenv("PERENNIAL_FEEDBACK_TOKEN", raising=False)

    def served(isvc: dict[str, object]) -> tuple[dict[str, Any], Any]:
        pod = d.deployment(isvc, STABLE, MV, 1, CONFIG, NO_POOL)["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        # The server parses exactly the operator's argv (the mounted file moved to tmp_path).
        argv = [a.replace(d.FEEDBACK_TOKEN_DIR, str(tmp_path)) for a in container["args"]]
        return pod, parse_args(argv)

    pod, config = served(ISVC)
    assert config.feedback_token is None and not config.allow_unauthenticated_feedback
    assert all("secret" not in v for v in pod["volumes"])

    (tmp_path / "token").write_text("s3cret\n")
    pod, config = served(_with_feedback({"tokenSecretName": "churn-feedback"}))
    assert config.feedback_token == "s3cret" and not config.allow_unauthenticated_feedback
    assert {
        "name": "feedback-token",
        "secret": {"secretName": "churn-feedback", "items": [{"key": "token", "path": "token"}]},
    } in pod["volumes"]
    assert {
        "name": "feedback-token", "mountPath": d.FEEDBACK_TOKEN_DIR, "readOnly": True
    } in pod["containers"][0]["volumeMounts"]  # fmt: skip
    assert "s3cret" not in json.dumps(pod)  # the token itself never enters the pod spec

    pod, config = served(_with_feedback({"allowUnauthenticated": True}))
    assert config.feedback_token is None and config.allow_unauthenticated_feedback
