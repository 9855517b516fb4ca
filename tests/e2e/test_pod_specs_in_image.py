"""The operator's own pod specs, run as they are against the built runtime image: no
operator, no TrainingJob or ModelVersion objects, just what the builders in desired/ make
(a Job and a Deployment), applied and run by the node.

This is where command/args meet the image's ENTRYPOINT/CMD: a program named in `args`
would run as `perennial-train perennial-train ...` and fail at once. With
--e2e-runtime=local the same specs go through the host-process runtime, which resolves
command/args against the Dockerfile's ENTRYPOINT/CMD.
"""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from sklearn.datasets import load_breast_cancer
from skops.io import get_untrusted_types
from skops.io import load as skops_load

from perennial_operator.api.group import API_VERSION
from perennial_operator.config import DEFAULT_ARTIFACT_PVC, OperatorConfig
from perennial_operator.desired import inferenceservice as isvc_desired
from perennial_operator.desired.placement import NO_POOL
from perennial_operator.desired.trainingjob import artifact_uri, trainingjob_children
from perennial_operator.k8s.kube import Kube
from perennial_runtime import contract
from support.poll import until

pytestmark = pytest.mark.e2e


def detached(manifest: dict[str, Any]) -> dict[str, Any]:
    """The child without its owner reference: its owner is never created here (and the
    garbage collector deletes children of missing owners)."""
    meta = {k: v for k, v in manifest["metadata"].items() if k != "ownerReferences"}
    return {**manifest, "metadata": meta}


def owner(kind: str, name: str, namespace: str, spec: dict[str, Any]) -> dict[str, Any]:
    meta = {"name": name, "namespace": namespace, "uid": "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"}
    return {"apiVersion": API_VERSION, "kind": kind, "metadata": meta, "spec": spec}


def pod_of(kube: Kube, ns: str, selector: str) -> dict[str, Any] | None:
    pods = kube.list("v1", "Pod", ns, selector)
    return pods[0] if pods else None


def test_the_operators_pod_specs_train_and_serve_in_the_runtime_image(
    kube: Kube, namespace: str, pod_runtime: Any, artifacts: Path
) -> None:
    config = OperatorConfig(
        runtime_image=pod_runtime.operator_env.get("PERENNIAL_RUNTIME_IMAGE", "perennial/x:1"),
        pod_annotations=dict(pod_runtime.pod_annotations),
    )
    tj = owner(
        "TrainingJob",
        "spec-check",
        namespace,
        {
            "model": "bc",
            "task": "classification",
            "algorithm": "logistic_regression",
            "dataset": {"uri": "builtin://breast_cancer", "target": "target", "seed": 3},
            "resources": {"cpu": "200m", "memory": "512Mi"},
            "backoffLimit": 0,
        },
    )
    for child in trainingjob_children(tj, config, NO_POOL):
        kube.create(detached(child))
    selector = "perennial.dev/trainingjob=spec-check"

    def describe() -> str:
        pod = pod_of(kube, namespace, selector) or {}
        name = pod.get("metadata", {}).get("name", "")
        logs = {
            c: pod_runtime.container_log(namespace, name, c)[-1500:] for c in ("validate", "train")
        }
        return json.dumps({"status": pod.get("status"), "logs": logs}, indent=1)[-6000:]

    def finished() -> dict[str, Any] | None:
        pod = pod_of(kube, namespace, selector)
        phase = (pod or {}).get("status", {}).get("phase")
        return pod if phase in ("Succeeded", "Failed") else None

    pod = until(finished, timeout=300, message="the training pod to finish", describe=describe)
    assert pod["status"]["phase"] == "Succeeded", describe()
    (train,) = pod["status"]["containerStatuses"]
    result = json.loads(train["state"]["terminated"]["message"])  # via terminationMessagePath
    assert result["outcome"] == "Succeeded"

    uri = artifact_uri(tj, config)
    claim, _, path = uri.removeprefix("pvc://").partition("/")
    assert claim == DEFAULT_ARTIFACT_PVC
    model_dir = pod_runtime.claim_folder(namespace, claim) / path
    contract.verify_artifacts(model_dir)  # every file the trainer wrote matches its sha256

    mv = {
        "spec": {
            "version": 1,
            "artifact": {"uri": uri, "sha256": contract.sha256_file(model_dir / contract.RESULT)},
        }
    }
    isvc = owner(
        "InferenceService",
        "spec-check",
        namespace,
        {
            "model": {"name": "bc", "version": 1},
            "replicas": 1,
            "resources": {"cpu": "500m", "memory": "512Mi"},
        },
    )
    kube.create(
        detached(isvc_desired.deployment(isvc, isvc_desired.STABLE, mv, 1, config, NO_POOL))
    )

    def ready_ip() -> str | None:
        pod = pod_of(kube, namespace, "perennial.dev/inferenceservice=spec-check") or {}
        conditions = pod.get("status", {}).get("conditions") or []
        ready = any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)
        return pod["status"].get("podIP") if ready else None

    ip = until(ready_ip, timeout=300, message="the serving pod Ready")
    rows = load_breast_cancer(as_frame=True).data.iloc[:6]
    body = json.dumps({"instances": rows.to_numpy().tolist()}).encode()
    request = urllib.request.Request(
        f"http://{ip}:8080/v1/models/bc:predict",
        data=body,
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as resp:
        answer = json.loads(resp.read())
    skops_file = model_dir / contract.MODEL_SKOPS
    model = skops_load(skops_file, trusted=get_untrusted_types(file=skops_file))
    assert [int(x) for x in answer["predictions"]] == [int(x) for x in model.predict(rows)]
