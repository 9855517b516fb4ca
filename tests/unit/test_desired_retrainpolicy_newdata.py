"""The newData probe's children: a ConfigMap holding the template and a one-pod Job running
`perennial-train fingerprint`, restricted, owned by the policy, labelled, self-cleaning."""

from __future__ import annotations

import copy

import pytest
import yaml

from perennial_operator.api.names import probe_job_name
from perennial_operator.config import OperatorConfig
from perennial_operator.desired.retrainpolicy_newdata import (
    configmap_name,
    probe_configmap,
    probe_job,
    probe_selector,
)

pytestmark = pytest.mark.unit

CONFIG = OperatorConfig(
    runtime_image="perennial/runtime:test",
    artifact_pvc="artifacts",
    pod_annotations={"kwok.x-k8s.io/status": "custom"},
)
POLICY = {
    "apiVersion": "perennial.dev/v1alpha1",
    "kind": "RetrainPolicy",
    "metadata": {"name": "churn", "namespace": "ml", "uid": "u-1"},
    "spec": {
        "inferenceService": "churn",
        "triggers": {"newData": {"pollSeconds": 60}},
        "template": {
            "model": "churn",
            "task": "classification",
            "dataset": {"uri": "pvc://datasets/churn/latest.csv", "target": "label"},
            "resources": {"cpu": "8", "memory": "6Gi", "gpu": 2},
            "computePool": "gpu-a100",
            "activeDeadlineSeconds": 600,
        },
    },
}
OWNER = {
    "apiVersion": "perennial.dev/v1alpha1",
    "kind": "RetrainPolicy",
    "name": "churn",
    "uid": "u-1",
    "controller": True,
    "blockOwnerDeletion": True,
}
NAME = probe_job_name("churn", "20261127140000")


def pod_of(job):
    return job["spec"]["template"]["spec"]


def test_names_and_selector():
    assert NAME == "churn-newdata-20261127140000"
    assert configmap_name("churn") == "churn-newdata"
    long = probe_job_name("x" * 60, "20261127140000")
    assert len(long) <= 63 and long.endswith("-newdata-20261127140000")
    assert probe_selector(NAME) == "perennial.dev/newdata-probe=churn-newdata-20261127140000"


def test_configmap_holds_the_template_as_the_trainingjob_the_probe_reads():
    cm = probe_configmap(POLICY)
    assert cm["metadata"]["name"] == "churn-newdata"
    assert cm["metadata"]["ownerReferences"] == [OWNER]
    assert cm["metadata"]["labels"] == {
        "app.kubernetes.io/managed-by": "perennial",
        "perennial.dev/retrainpolicy": "churn",
    }
    document = yaml.safe_load(cm["data"]["trainingjob.yaml"])
    assert (document["apiVersion"], document["kind"]) == ("perennial.dev/v1alpha1", "TrainingJob")
    assert document["spec"] == POLICY["spec"]["template"]


def test_job_is_one_restricted_pod_running_fingerprint_owned_and_labelled():
    job = probe_job(POLICY, NAME, CONFIG)
    labels = {
        "app.kubernetes.io/managed-by": "perennial",
        "perennial.dev/retrainpolicy": "churn",
        "perennial.dev/newdata-probe": NAME,
    }
    assert job["metadata"]["name"] == NAME and job["metadata"]["namespace"] == "ml"
    assert job["metadata"]["labels"] == labels
    assert job["metadata"]["ownerReferences"] == [OWNER]
    spec = job["spec"]
    assert spec["backoffLimit"] == 0  # a failed probe is tried again at the next poll
    assert spec["ttlSecondsAfterFinished"] > 0
    assert spec["activeDeadlineSeconds"] == 600  # the template's, under the cap
    assert spec["template"]["metadata"] == {
        "labels": labels,
        "annotations": {"kwok.x-k8s.io/status": "custom"},
    }
    pod = pod_of(job)
    assert pod["restartPolicy"] == "Never" and pod["automountServiceAccountToken"] is False
    assert "initContainers" not in pod
    security = pod["securityContext"]
    assert security["runAsNonRoot"] is True
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}
    (container,) = pod["containers"]
    assert container["name"] == "fingerprint"
    assert container["command"] == ["perennial-train"]
    assert container["args"] == ["fingerprint", "-f", "/etc/perennial/trainingjob.yaml"]
    assert container["image"] == "perennial/runtime:test"
    assert container["terminationMessagePath"] == "/dev/termination-log"
    ctx = container["securityContext"]
    assert ctx["allowPrivilegeEscalation"] is False and ctx["runAsNonRoot"] is True
    assert ctx["capabilities"] == {"drop": ["ALL"]} and ctx["readOnlyRootFilesystem"] is True
    assert {"name": "PERENNIAL_PVC_ROOT", "value": "/mnt/pvc"} in container["env"]


def test_only_the_dataset_claim_is_mounted_read_only_with_the_spec():
    pod = pod_of(probe_job(POLICY, NAME, CONFIG))
    claims = [v["persistentVolumeClaim"] for v in pod["volumes"] if "persistentVolumeClaim" in v]
    assert claims == [{"claimName": "datasets", "readOnly": True}]  # no artifact claim
    assert {"name": "spec", "configMap": {"name": "churn-newdata"}} in pod["volumes"]
    (container,) = pod["containers"]
    mounts = {m["mountPath"]: m.get("readOnly", False) for m in container["volumeMounts"]}
    assert mounts == {"/etc/perennial": True, "/tmp": False, "/mnt/pvc/datasets": True}


def test_no_gpu_and_no_pool_placement_memory_of_the_template():
    pod = pod_of(probe_job(POLICY, NAME, CONFIG))
    resources = pod["containers"][0]["resources"]
    assert resources == {"requests": {"cpu": "100m", "memory": "6Gi"}, "limits": {"memory": "6Gi"}}
    assert "nodeSelector" not in pod and "tolerations" not in pod


@pytest.mark.parametrize(
    ("change", "image", "claims"),
    [
        ({"dataset": {"uri": "builtin://iris"}}, "perennial/runtime:test", []),
        ({"image": "me/runtime:2"}, "me/runtime:2", ["datasets"]),
        (
            {"image": "me/trainer:2", "command": ["python", "t.py"]},
            "perennial/runtime:test",
            ["datasets"],
        ),
    ],
    ids=["builtin-no-claim", "custom-runtime-image", "custom-command-uses-our-runtime"],
)
def test_image_and_claims_follow_the_template(change, image, claims):
    policy = copy.deepcopy(POLICY)
    policy["spec"]["template"].update(change)
    pod = pod_of(probe_job(policy, NAME, CONFIG))
    assert pod["containers"][0]["image"] == image
    found = [
        v["persistentVolumeClaim"]["claimName"]
        for v in pod["volumes"]
        if "persistentVolumeClaim" in v
    ]
    assert found == claims


def test_defaults_and_determinism():
    policy = copy.deepcopy(POLICY)
    for key in ("resources", "activeDeadlineSeconds"):
        policy["spec"]["template"].pop(key)
    job = probe_job(policy, NAME, OperatorConfig(runtime_image="r:1"))
    assert job == probe_job(policy, NAME, OperatorConfig(runtime_image="r:1"))
    assert job["spec"]["activeDeadlineSeconds"] == 900  # capped: the template's is 3600
    assert pod_of(job)["containers"][0]["resources"]["requests"]["memory"] == "2Gi"
    assert "annotations" not in job["spec"]["template"]["metadata"]
