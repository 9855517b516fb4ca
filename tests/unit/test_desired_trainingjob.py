from __future__ import annotations

import copy

import pytest
import yaml

from perennial_operator.config import OperatorConfig
from perennial_operator.desired.placement import NO_POOL, pool_placement
from perennial_operator.desired.trainingjob import (
    artifact_uri,
    configmap,
    job,
    job_name,
    trainingjob_children,
)

pytestmark = pytest.mark.unit

CONFIG = OperatorConfig(runtime_image="perennial/runtime:test", artifact_pvc="artifacts")
TJ = {
    "apiVersion": "perennial.dev/v1alpha1",
    "kind": "TrainingJob",
    "metadata": {
        "name": "churn-train",
        "namespace": "ml",
        "uid": "0123456789abcdef",
        "generation": 1,
    },
    "spec": {
        "model": "churn",
        "task": "classification",
        "algorithm": "auto",
        "dataset": {"uri": "pvc://datasets/churn.csv", "target": "label"},
        "resources": {"cpu": "2", "memory": "4Gi", "gpu": 0},
        "backoffLimit": 3,
        "activeDeadlineSeconds": 600,
    },
}
GPU_POOL = {
    "spec": {
        "node": {"cpu": "16", "memory": "64Gi", "gpu": 4},
        "labels": {"perennial.dev/pool": "gpu-a100"},
        "taints": [
            {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"},
            {"key": "dedicated", "effect": "NoExecute"},
        ],
    }
}


def pod_spec(manifest):
    return manifest["spec"]["template"]["spec"]


def test_children_are_a_configmap_and_a_job_owned_by_the_trainingjob():
    children = trainingjob_children(TJ, CONFIG, NO_POOL)
    assert [c["kind"] for c in children] == ["ConfigMap", "Job"]
    for child in children:
        (owner,) = child["metadata"]["ownerReferences"]
        assert owner == {
            "apiVersion": "perennial.dev/v1alpha1",
            "kind": "TrainingJob",
            "name": "churn-train",
            "uid": "0123456789abcdef",
            "controller": True,
            "blockOwnerDeletion": True,
        }
        assert child["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "perennial"
        assert child["metadata"]["labels"]["perennial.dev/trainingjob"] == "churn-train"


def test_configmap_holds_the_spec_the_trainer_reads():
    data = yaml.safe_load(configmap(TJ)["data"]["trainingjob.yaml"])
    assert data["kind"] == "TrainingJob"
    assert data["spec"] == TJ["spec"]


def test_job_runs_validate_then_train_with_limits_and_failure_policy():
    manifest = job(TJ, CONFIG, NO_POOL)
    spec = manifest["spec"]
    assert manifest["metadata"]["name"] == job_name(TJ) == "churn-train-train"
    assert spec["backoffLimit"] == 3 and spec["activeDeadlineSeconds"] == 600
    assert spec["ttlSecondsAfterFinished"] == CONFIG.training_job_ttl_seconds
    ttl = OperatorConfig.from_env({"PERENNIAL_TRAINING_JOB_TTL_SECONDS": "60"})
    assert job(TJ, ttl, NO_POOL)["spec"]["ttlSecondsAfterFinished"] == 60
    pod = pod_spec(manifest)
    assert pod["restartPolicy"] == "Never"
    (init,) = pod["initContainers"]
    (main,) = pod["containers"]
    # The program is the command (it replaces the image's ENTRYPOINT); flags are args.
    assert init["command"] == ["perennial-train"] and init["args"][0] == "validate"
    assert main["command"] == ["perennial-train"] and main["args"][0] == "-f"
    assert "--output" in main["args"]
    output = main["args"][main["args"].index("--output") + 1]
    assert output == "/mnt/pvc/artifacts/models/churn/ml-churn-train-01234567"
    assert artifact_uri(TJ, CONFIG) == "pvc://artifacts/models/churn/ml-churn-train-01234567"
    for container in (init, main):
        assert container["image"] == "perennial/runtime:test"
        assert container["terminationMessagePath"] == "/dev/termination-log"
        assert container["resources"]["requests"] == {"cpu": "2", "memory": "4Gi"}
        sc = container["securityContext"]
        assert sc["allowPrivilegeEscalation"] is False and sc["capabilities"] == {"drop": ["ALL"]}
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    rules = spec["podFailurePolicy"]["rules"]
    fail_fast = [r for r in rules if r["action"] == "FailJob"]
    assert {r["onExitCodes"]["containerName"] for r in fail_fast} == {"validate", "train"}
    assert all(r["onExitCodes"]["values"] == [2, 3, 4, 5] for r in fail_fast)


def test_dataset_claim_is_mounted_read_only_beside_the_artifact_claim():
    pod = pod_spec(job(TJ, CONFIG, NO_POOL))
    claims = {
        v["persistentVolumeClaim"]["claimName"]: v["persistentVolumeClaim"]["readOnly"]
        for v in pod["volumes"]
        if "persistentVolumeClaim" in v
    }
    assert claims == {"artifacts": False, "datasets": True}


def test_only_the_jobs_own_folder_of_the_artifact_claim_is_writable():
    """Finding 9 (issue 20): a training pod may run a user's code; the artifact claim holds
    every model of the namespace. Each claim is mounted read-only; the job's output folder
    alone is mounted writable over its own place, in every container of the pod."""
    tj = copy.deepcopy(TJ)
    tj["spec"]["baseline"] = {"uri": "pvc://artifacts/models/churn/ml-old-01234567"}
    pod = pod_spec(job(tj, CONFIG, NO_POOL))
    volumes = {v["name"]: v for v in pod["volumes"]}
    for container in pod["initContainers"] + pod["containers"]:
        claim_mounts = [m for m in container["volumeMounts"] if m["name"].startswith("pvc-")]
        writable = [m for m in claim_mounts if not m.get("readOnly")]
        folder = "models/churn/ml-churn-train-01234567"
        assert writable == [
            {"name": "pvc-0", "mountPath": f"/mnt/pvc/artifacts/{folder}", "subPath": folder}
        ], container["name"]
        assert volumes["pvc-0"]["persistentVolumeClaim"]["claimName"] == "artifacts"
        whole = {m["mountPath"] for m in claim_mounts if m.get("readOnly")}
        assert whole == {"/mnt/pvc/artifacts", "/mnt/pvc/datasets"}
        assert all("subPath" not in m for m in claim_mounts if m.get("readOnly"))


def test_gpu_pool_gives_selector_tolerations_and_no_gpu_unasked():
    pod = pod_spec(job(TJ, CONFIG, pool_placement(GPU_POOL)))
    assert pod["nodeSelector"] == {"perennial.dev/pool": "gpu-a100"}
    assert pod["tolerations"] == [
        {"key": "nvidia.com/gpu", "operator": "Equal", "value": "present", "effect": "NoSchedule"},
        {"key": "dedicated", "operator": "Exists", "effect": "NoExecute"},
    ]
    resources = pod["containers"][0]["resources"]
    assert "nvidia.com/gpu" not in resources["requests"]
    assert "nvidia.com/gpu" not in resources["limits"]


@pytest.mark.parametrize(
    ("change", "gpus"),
    [
        ({"algorithm": "xgboost"}, 2),
        ({"algorithm": "auto"}, 2),  # AutoML may pick XGBoost
        ({"algorithm": "random_forest"}, 0),  # it would hold a GPU it never touches
        ({"algorithm": "random_forest", "command": ["python", "train.py"]}, 2),
        ({"algorithm": "kmeans", "task": "clustering"}, 0),
        ({"algorithm": "auto", "task": "clustering"}, 0),
    ],
)
def test_a_gpu_is_asked_for_only_where_the_code_can_use_it(change, gpus):
    tj = copy.deepcopy(TJ)
    tj["spec"]["resources"]["gpu"] = 2
    tj["spec"].update(change)
    pod = pod_spec(job(tj, CONFIG, pool_placement(GPU_POOL)))
    (train,) = pod["containers"]
    assert train["resources"]["limits"].get("nvidia.com/gpu") == (str(gpus) if gpus else None)
    env = {e["name"]: e["value"] for e in train["env"]}
    assert env.get("PERENNIAL_GPUS") == (str(gpus) if gpus else None)
    (validate,) = pod["initContainers"]  # the data checks never hold a GPU
    assert "nvidia.com/gpu" not in validate["resources"]["limits"]
    assert "PERENNIAL_GPUS" not in {e["name"] for e in validate["env"]}


def test_explicit_gpu_count_wins():
    tj = copy.deepcopy(TJ)
    tj["spec"]["resources"]["gpu"] = 2
    resources = pod_spec(job(tj, CONFIG, pool_placement(GPU_POOL)))["containers"][0]["resources"]
    assert resources["limits"]["nvidia.com/gpu"] == "2"


def test_baseline_directory_is_passed_and_mounted():
    manifest = job(TJ, CONFIG, NO_POOL, baseline_uri="pvc://models/churn/v3")
    args = pod_spec(manifest)["containers"][0]["args"]
    assert args[args.index("--baseline-dir") + 1] == "/mnt/pvc/models/churn/v3"
    claims = [
        v["persistentVolumeClaim"]["claimName"]
        for v in pod_spec(manifest)["volumes"]
        if "persistentVolumeClaim" in v
    ]
    assert claims == ["artifacts", "datasets", "models"]


def test_custom_command_runs_in_custom_image_but_data_checks_use_the_runtime():
    tj = copy.deepcopy(TJ)
    tj["spec"].update(image="corp/trainer:1", command=["python", "train.py"])
    pod = pod_spec(job(tj, CONFIG, NO_POOL))
    assert pod["containers"][0]["image"] == "corp/trainer:1"
    assert pod["containers"][0]["command"] == ["python", "train.py"]
    assert pod["containers"][0]["args"] == []
    assert pod["initContainers"][0]["image"] == "perennial/runtime:test"


def test_builders_are_deterministic_and_long_names_stay_valid():
    assert trainingjob_children(TJ, CONFIG, NO_POOL) == trainingjob_children(TJ, CONFIG, NO_POOL)
    tj = copy.deepcopy(TJ)
    tj["metadata"]["name"] = "x" * 63
    name = job_name(tj)
    assert len(name) <= 63 and name.endswith("-train")
    assert name != job_name({**tj, "metadata": {**tj["metadata"], "name": "x" * 62 + "y"}})


def test_operator_pod_annotations_reach_the_pod_template():
    config = OperatorConfig(pod_annotations={"kwok.x-k8s.io/status": "custom"})
    template = job(TJ, config, NO_POOL)["spec"]["template"]
    assert template["metadata"]["annotations"] == {"kwok.x-k8s.io/status": "custom"}


def test_credentials_reach_every_runtime_container_by_reference_only():
    tj = copy.deepcopy(TJ)
    env_from = [{"secretRef": {"name": "s3-credentials"}}, {"configMapRef": {"name": "s3"}}]
    tj["spec"].update(serviceAccountName="trainer", envFrom=env_from)
    pod = pod_spec(job(tj, CONFIG, NO_POOL))
    assert pod["serviceAccountName"] == "trainer"
    assert pod["automountServiceAccountToken"] is False  # the identity, not an API token
    for container in pod["initContainers"] + pod["containers"]:
        assert container["envFrom"] == env_from  # the data checks read the same data
    plain = pod_spec(job(TJ, CONFIG, NO_POOL))
    assert "serviceAccountName" not in plain and "envFrom" not in plain["containers"][0]
