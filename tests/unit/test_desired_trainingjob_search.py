"""The step Jobs of a fanned-out AutoML search: plan, Indexed rung Jobs, finish."""

from __future__ import annotations

import copy

import pytest

from perennial_operator.config import OperatorConfig
from perennial_operator.decide.trainingjob.search import FINISH, PLAN, RUNG
from perennial_operator.desired.placement import NO_POOL, pool_placement
from perennial_operator.desired.trainingjob import job
from perennial_operator.desired.trainingjob_search import parallelism, step_job

pytestmark = pytest.mark.unit

CONFIG = OperatorConfig(runtime_image="perennial/runtime:test", artifact_pvc="artifacts")
TJ = {
    "apiVersion": "perennial.dev/v1alpha1",
    "kind": "TrainingJob",
    "metadata": {"name": "churn-train", "namespace": "ml", "uid": "0123456789abcdef"},
    "spec": {
        "model": "churn",
        "task": "classification",
        "algorithm": "auto",
        "automl": {"parallelism": 4},
        "dataset": {"uri": "pvc://datasets/churn.csv", "target": "label"},
        "resources": {"cpu": "1", "memory": "2Gi", "gpu": 0},
    },
}
TAINT = {"key": "dedicated", "value": "ml", "effect": "NoSchedule"}
POOL = {"spec": {"labels": {"perennial.dev/pool": "cpu"}, "taints": [TAINT]}}
OUTPUT = "/mnt/pvc/artifacts/models/churn/ml-churn-train-01234567"


def _with(**spec: object) -> dict[str, object]:
    changed = copy.deepcopy(TJ)
    changed["spec"].update(spec)  # type: ignore[attr-defined]
    return changed


def test_parallelism_applies_only_to_an_automl_search_of_our_runtime() -> None:
    assert parallelism(TJ) == 4
    assert parallelism(_with(automl={})) == 1
    assert parallelism(_with(algorithm="random_forest")) == 1
    assert parallelism(_with(task="anomaly-detection")) == 1
    assert parallelism(_with(command=["python", "train.py"])) == 1


def test_a_rung_is_an_indexed_job_that_fails_an_index_not_the_search() -> None:
    manifest = step_job(TJ, CONFIG, pool_placement(POOL), RUNG, 1, candidates=9)
    spec = manifest["spec"]
    assert manifest["metadata"]["name"] == "churn-train-rung-1"
    assert spec["completionMode"] == "Indexed" and spec["completions"] == 9
    assert spec["parallelism"] == 4 and spec["backoffLimitPerIndex"] == 1
    assert "backoffLimit" not in spec
    rules = spec["podFailurePolicy"]["rules"]
    assert rules[0]["action"] == "FailIndex" and rules[0]["onExitCodes"]["values"] == [2, 3, 4, 5]
    pod = spec["template"]["spec"]
    (container,) = pod["containers"]
    spec_file = "/etc/perennial/trainingjob.yaml"
    assert container["command"] == ["perennial-train"]
    assert container["args"] == [
        "trial", "-f", spec_file, "--output", OUTPUT, "--rung", "1"
    ]  # fmt: skip
    # On the pool (its selector, its taints tolerated), spread one by one over its nodes.
    assert pod["nodeSelector"] == {"perennial.dev/pool": "cpu"}
    assert pod["tolerations"][0]["key"] == "dedicated"
    (spread,) = pod["topologySpreadConstraints"]
    assert spread["topologyKey"] == "kubernetes.io/hostname" and spread["maxSkew"] == 1
    labels = spec["template"]["metadata"]["labels"]
    assert spread["labelSelector"]["matchLabels"].items() <= labels.items()
    assert labels["perennial.dev/automl-step"] == "rung-1"
    assert container["resources"]["requests"] == {"cpu": "1", "memory": "2Gi"}


def test_fewer_candidates_than_parallelism_run_that_many_pods() -> None:
    assert step_job(TJ, CONFIG, NO_POOL, RUNG, 2, candidates=2)["spec"]["parallelism"] == 2


@pytest.mark.parametrize(("kind", "name"), [(PLAN, "churn-train-plan"),
                                            (FINISH, "churn-train-finish-0")])  # fmt: skip
def test_plan_and_finish_are_one_pod_jobs_with_the_single_pods_pod(kind: str, name: str) -> None:
    # The spec's identity and credentials reach every step's pod, as the single pod's.
    tj = _with(serviceAccountName="trainer", envFrom=[{"secretRef": {"name": "s3-creds"}}])
    manifest = step_job(tj, CONFIG, NO_POOL, kind, 0)
    single = job(tj, CONFIG, NO_POOL)
    assert manifest["metadata"]["name"] == name
    assert manifest["metadata"]["ownerReferences"] == single["metadata"]["ownerReferences"]
    assert "completionMode" not in manifest["spec"]
    assert manifest["spec"]["podFailurePolicy"]["rules"][0]["action"] == "FailJob"
    pod, base = manifest["spec"]["template"]["spec"], single["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["command"] == ["perennial-train"] and container["args"][0] == kind
    for key in ("securityContext", "volumes", "automountServiceAccountToken",
                "enableServiceLinks", "serviceAccountName"):  # fmt: skip
        assert pod[key] == base[key]
    assert pod["serviceAccountName"] == "trainer" and pod["enableServiceLinks"] is False
    assert container["envFrom"] == [{"secretRef": {"name": "s3-creds"}}]
    (train,) = base["containers"]
    for key in ("image", "env", "envFrom", "resources", "volumeMounts", "securityContext",
                "terminationMessagePath"):  # fmt: skip
        assert container[key] == train[key]


def test_finish_passes_the_baseline_directory() -> None:
    manifest = step_job(TJ, CONFIG, NO_POOL, FINISH, 2, baseline_uri="pvc://artifacts/models/b")
    args = manifest["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[-2:] == ["--baseline-dir", "/mnt/pvc/artifacts/models/b"]


def _gpus(manifest: dict[str, object]) -> tuple[str | None, dict[str, str]]:
    (container,) = manifest["spec"]["template"]["spec"]["containers"]  # type: ignore[index]
    env = {e["name"]: e["value"] for e in container.get("env", [])}
    return container["resources"]["limits"].get("nvidia.com/gpu"), env


def test_with_a_gpu_only_the_rungs_gpu_job_and_the_finish_ask_for_it() -> None:
    # resources.gpu: 1 on a search: the plan reads data, the rung's non-GPU families do not
    # touch it; the GPU families' Job and the finish (which may refit XGBoost) get it.
    tj = _with(resources={"cpu": "1", "memory": "2Gi", "gpu": 1})
    split = {"part": "gpu", "indexes": (3, 9), "parallel": 1}
    gpu_job = step_job(tj, CONFIG, NO_POOL, RUNG, 0, 2, **split)  # type: ignore[arg-type]
    assert gpu_job["metadata"]["name"] == "churn-train-rung-0-gpu"
    assert gpu_job["spec"]["completions"] == 2 and gpu_job["spec"]["parallelism"] == 1
    container = gpu_job["spec"]["template"]["spec"]["containers"][0]
    assert container["args"][-2:] == ["--indexes", "3,9"]
    labels = gpu_job["spec"]["template"]["metadata"]["labels"]
    assert labels["perennial.dev/automl-step"] == "rung-0-gpu"
    limit, env = _gpus(gpu_job)
    assert limit == "1" and env["PERENNIAL_GPUS"] == "1"
    cpu_job = step_job(tj, CONFIG, NO_POOL, RUNG, 0, 10, indexes=(0, 1), parallel=3)
    assert cpu_job["metadata"]["name"] == "churn-train-rung-0"
    assert cpu_job["spec"]["parallelism"] == 3
    for no_gpu in (cpu_job, step_job(tj, CONFIG, NO_POOL, PLAN, 0)):
        limit, env = _gpus(no_gpu)
        assert limit is None and "PERENNIAL_GPUS" not in env
    assert _gpus(step_job(tj, CONFIG, NO_POOL, FINISH, 0))[0] == "1"
