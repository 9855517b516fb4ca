"""Finding 9 (issue 20), the training half: a training pod may run a user's code (spec.image,
spec.command), and the artifact claim holds every model of the namespace. The pod gets the
claim read-only and only its own output folder writable, so it cannot rewrite or add to
another job's model. Run by the real node (kubelet subPath, runc read-only bind mounts): the
host-process local runtime runs only our own commands and cannot make a mount read-only.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from perennial_operator.api.group import API_VERSION
from perennial_operator.config import DEFAULT_ARTIFACT_PVC, OperatorConfig
from perennial_operator.desired.placement import NO_POOL
from perennial_operator.desired.trainingjob import artifact_path, trainingjob_children
from perennial_operator.k8s.kube import Kube
from support.poll import until

pytestmark = pytest.mark.e2e

VICTIM = "models/iris/other-iris-0badc0de"
# The user's "training": try to overwrite another job's model, add a file beside it and at
# the claim's root, then write into its own output folder; report each outcome.
SCRIPT = """
import json, os, sys
out, victim = sys.argv[1], sys.argv[2]
claim = os.path.dirname(os.path.dirname(os.path.dirname(out.rstrip("/"))))
os.makedirs(out, exist_ok=True)  # as the trainer does; it is there already (a mount)
report = {}
for key, path in [("overwrite", claim + "/" + victim + "/model.onnx"),
                  ("beside", claim + "/" + victim + "/extra"),
                  ("root", claim + "/planted"),
                  ("own", out + "/model.bin")]:
    try:
        with open(path, "wb") as f:
            f.write(b"tampered")
        report[key] = "written"
    except OSError as err:
        report[key] = err.strerror
open("/dev/termination-log", "w").write(json.dumps(report))
"""


def test_a_training_pod_writes_only_its_own_folder_of_the_claim(
    kube: Kube, namespace: str, pod_runtime: Any, artifacts: Path
) -> None:
    if pod_runtime.kind != "node":
        pytest.skip("read-only mounts need the real node: the local runtime runs host processes")
    victim = artifacts / VICTIM
    victim.mkdir(parents=True)
    (victim / "model.onnx").write_bytes(b"the real model")
    (victim / "model.onnx").chmod(0o666)
    for folder in (victim, victim.parent, victim.parent.parent):
        folder.chmod(0o777)  # as writable as if earlier training pods had made them
    config = OperatorConfig(
        runtime_image=pod_runtime.operator_env["PERENNIAL_RUNTIME_IMAGE"],
        pod_annotations=dict(pod_runtime.pod_annotations),
    )
    uid = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
    tj = {
        "apiVersion": API_VERSION,
        "kind": "TrainingJob",
        "metadata": {"name": "tamper", "namespace": namespace, "uid": uid},
        "spec": {
            "model": "iris",
            "task": "classification",
            "dataset": {"uri": "builtin://iris", "target": "target"},
            "resources": {"cpu": "100m", "memory": "256Mi"},
            "backoffLimit": 0,
        },
    }
    output = f"/mnt/pvc/{DEFAULT_ARTIFACT_PVC}/{artifact_path(tj)}"
    tj["spec"]["command"] = ["python3", "-c", SCRIPT, output, VICTIM]
    for child in trainingjob_children(tj, config, NO_POOL):
        meta = {k: v for k, v in child["metadata"].items() if k != "ownerReferences"}
        kube.create({**child, "metadata": meta})  # no owner: the TrainingJob is never created

    def finished() -> dict[str, Any] | None:
        pods = kube.list("v1", "Pod", namespace, "perennial.dev/trainingjob=tamper")
        phase = pods[0].get("status", {}).get("phase") if pods else None
        return pods[0] if phase in ("Succeeded", "Failed") else None

    pod = until(finished, timeout=300, message="the tampering pod to finish")
    assert pod["status"]["phase"] == "Succeeded", json.dumps(pod["status"])[-3000:]
    (train,) = pod["status"]["containerStatuses"]
    report = json.loads(train["state"]["terminated"]["message"])
    assert report == {
        "overwrite": "Read-only file system",
        "beside": "Read-only file system",
        "root": "Read-only file system",
        "own": "written",
    }, report
    assert (victim / "model.onnx").read_bytes() == b"the real model"
    assert not (victim / "extra").exists() and not (artifacts / "planted").exists()
    own = artifacts / artifact_path(tj) / "model.bin"
    assert own.read_bytes() == b"tampered"
