"""TrainingJob on the real control plane, with the operator as a real process.

kwok leaves our training pods alone (annotation kwok.x-k8s.io/status=custom, set through the
operator's PERENNIAL_POD_ANNOTATIONS) so each test writes pod status the way a kubelet would:
the exit codes and termination messages the runtime produces.
"""

from __future__ import annotations

import concurrent.futures
import json
from typing import Any

import pytest

from perennial_operator.api.group import API_VERSION
from perennial_operator.config import OperatorConfig
from perennial_operator.k8s.kube import Kube
from perennial_operator.reconcile.trainingjob import register_model
from support import kubelet
from support.kstatus import check_health
from support.operator_process import OperatorOptions
from support.world import World

pytestmark = pytest.mark.integration

RESULT = {
    "outcome": "Succeeded",
    "metrics": {"accuracy": 0.96, "roc_auc": 0.991},
    "baselineMetrics": {},
    "dataset": {"uri": "builtin://breast_cancer", "sha256": "ab" * 32, "rows": 569},
    "artifact": {"format": "onnx", "sha256": "cd" * 32},
    "algorithm": "random_forest",
    "hyperparameters": {"n_estimators": 100},
    "signature": {
        "inputs": [{"name": "mean radius", "datatype": "FP64"}],
        "outputs": [{"name": "label", "datatype": "INT64"}],
    },
}
DATA_INVALID = {
    "outcome": "DataInvalid",
    "message": "1 data check failed",
    "failures": [{"check": "min_rows", "column": None, "observed": 569, "expected": ">= 100000"}],
}


def trainingjob(name: str, model: str = "churn", **extra: Any) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "TrainingJob",
        "metadata": {"name": name},
        "spec": {
            "model": model,
            "task": "classification",
            "algorithm": "random_forest",
            "dataset": {"uri": "builtin://breast_cancer", "target": "target"},
            "resources": {"cpu": "100m", "memory": "128Mi"},
            "backoffLimit": 2,
            **extra,
        },
    }


@pytest.fixture
def operator_options() -> OperatorOptions:
    # The artifact claim bound (training pods mount it); pod status is the test's to write.
    return OperatorOptions(pod_annotations=kubelet.LEAVE_TO_TEST, artifact_claim=True)


def pods(world: World, tj: str) -> list[dict[str, Any]]:
    found = world.list("Pod", f"perennial.dev/trainingjob={tj}")
    return sorted(found, key=lambda p: p["metadata"]["creationTimestamp"])


def wait_phase(world: World, name: str, phase: str, timeout: float = 60.0) -> dict[str, Any]:
    return world.wait(
        lambda: (
            (t := world.get("TrainingJob", name))
            and t.get("status", {}).get("phase") == phase
            and t
        ),
        f"TrainingJob {name} phase {phase}",
        timeout,
    )


def new_pod(world: World, tj: str, count: int = 1, timeout: float = 60.0) -> str:
    """The name of the count-th pod of `tj`, once it is scheduled."""
    found = world.wait(
        lambda: (
            (p := pods(world, tj))
            and len(p) >= count
            and p[count - 1].get("spec", {}).get("nodeName")
            and p
        ),
        f"pod #{count} of {tj} scheduled",
        timeout,
    )
    return str(found[count - 1]["metadata"]["name"])


def test_one_job_with_the_expected_pod_spec_admitted_under_restricted(world: World) -> None:
    world.create(trainingjob("spec-check"))
    job = world.wait(lambda: world.list("Job"), "the Job")[0]
    assert len(world.list("Job")) == 1
    assert job["metadata"]["ownerReferences"][0]["kind"] == "TrainingJob"
    assert job["spec"]["backoffLimit"] == 2
    assert job["spec"]["podFailurePolicy"]["rules"][0]["action"] == "FailJob"
    pod_spec = job["spec"]["template"]["spec"]
    assert [c["name"] for c in pod_spec["initContainers"]] == ["validate"]
    assert [c["name"] for c in pod_spec["containers"]] == ["train"]
    assert pod_spec["containers"][0]["resources"]["requests"] == {"cpu": "100m", "memory": "128Mi"}
    assert pod_spec["containers"][0]["terminationMessagePath"] == "/dev/termination-log"
    # The pod exists only if Pod Security "restricted" admitted it.
    new_pod(world, "spec-check")
    cm = world.kube.get("v1", "ConfigMap", world.ns, "spec-check-spec")
    assert cm is not None and "builtin://breast_cancer" in cm["data"]["trainingjob.yaml"]


def test_success_goes_through_the_phases_and_registers_a_model_with_lineage(world: World) -> None:
    world.create(trainingjob("happy"))
    pod = new_pod(world, "happy")
    kubelet.validating(world.kube, world.ns, pod)
    wait_phase(world, "happy", "Validating")
    kubelet.training(world.kube, world.ns, pod)
    check_health(wait_phase(world, "happy", "Training"), "InProgress")
    kubelet.finish(world.kube, world.ns, pod, exit_code=0, message=json.dumps(RESULT))
    tj = world.wait(
        lambda: (
            (t := world.get("TrainingJob", "happy"))
            and t.get("status", {}).get("modelVersion")
            and t
        ),
        "registration",
    )
    status = tj["status"]
    assert status["phase"] == "Succeeded"
    assert check_health(tj, "Current")["message"] == "registered as churn-v1"
    # No finalizer (kopf adds one only for timers, daemons and deletion handlers).
    assert not tj["metadata"].get("finalizers")
    assert status["metrics"] == {"accuracy": 0.96, "roc_auc": 0.991}
    assert status["dataset"]["sha256"] == "ab" * 32
    assert status["primaryMetric"] == "roc_auc=0.991"
    conds = {c["type"]: c["status"] for c in status["conditions"]}
    assert conds["DataValidated"] == "True" and conds["Complete"] == "True"
    (mv,) = world.list("ModelVersion")
    assert mv["metadata"]["name"] == "churn-v1" == status["modelVersion"]
    assert mv["spec"]["version"] == 1
    assert mv["spec"]["artifact"]["sha256"] == "cd" * 32
    assert mv["spec"]["artifact"]["uri"].startswith("pvc://perennial-artifacts/models/churn/")
    assert mv["spec"]["source"]["trainingJob"] == "happy"
    assert mv["spec"]["source"]["dataset"] == {
        "uri": "builtin://breast_cancer",
        "sha256": "ab" * 32,
        "rows": 569,
    }
    ready = world.wait(
        lambda: (
            (m := world.list("ModelVersion"))
            and m[0].get("status", {}).get("phase") == "Ready"
            and m[0]
        ),
        "ModelVersion Ready",
    )
    check_health(ready, "Current")


def test_data_validation_failure_fails_at_once_without_retry(world: World) -> None:
    world.create(trainingjob("bad-data"))
    pod = new_pod(world, "bad-data")
    kubelet.finish(
        world.kube, world.ns, pod, exit_code=3, message=json.dumps(DATA_INVALID), in_init=True
    )
    tj = wait_phase(world, "bad-data", "Failed")
    argo = check_health(tj, "Failed")
    assert (
        "min_rows: observed 569" in argo["message"]
        and "create a new TrainingJob" in argo["message"]
    )
    conds = {c["type"]: c for c in tj["status"]["conditions"]}
    assert conds["DataValidated"]["status"] == "False"
    assert conds["Failed"]["reason"] == "DataValidationFailed"
    assert "min_rows: observed 569, expected >= 100000" in conds["Failed"]["message"]
    (job,) = world.list("Job")
    failed = [c for c in job["status"]["conditions"] if c["type"] == "Failed"]
    assert failed and failed[0]["reason"] == "PodFailurePolicy"  # the Job controller, not us
    assert len(pods(world, "bad-data")) == 1 and tj["status"]["attempts"] == 1
    assert world.list("ModelVersion") == []


def test_a_crash_is_retried_and_the_retry_succeeds(world: World) -> None:
    world.create(trainingjob("flaky"))
    first = new_pod(world, "flaky")
    kubelet.finish(world.kube, world.ns, first, exit_code=137, message="OOMKilled")
    second = new_pod(world, "flaky", count=2, timeout=90)  # the Job controller's backoff
    assert second != first
    kubelet.finish(world.kube, world.ns, second, exit_code=0, message=json.dumps(RESULT))
    tj = world.wait(
        lambda: (
            (t := world.get("TrainingJob", "flaky"))
            and t.get("status", {}).get("modelVersion")
            and t
        ),
        "registration after retry",
    )
    assert tj["status"]["attempts"] == 2


def test_operator_killed_mid_job_restarts_without_duplicates(world: World) -> None:
    world.create(trainingjob("restart"))
    pod = new_pod(world, "restart")
    world.op.kill()
    kubelet.training(world.kube, world.ns, pod)
    world.op.start()
    wait_phase(world, "restart", "Training")
    world.op.kill()
    kubelet.finish(world.kube, world.ns, pod, exit_code=0, message=json.dumps(RESULT))
    world.op.start()
    world.wait(
        lambda: world.get("TrainingJob", "restart").get("status", {}).get("modelVersion"),
        "registration",
    )
    assert len(world.list("Job")) == 1
    assert len(pods(world, "restart")) == 1
    assert [m["metadata"]["name"] for m in world.list("ModelVersion")] == ["churn-v1"]


def test_two_jobs_finishing_together_get_distinct_versions(world: World) -> None:
    world.create(trainingjob("twin-a"))
    world.create(trainingjob("twin-b"))
    pods = [new_pod(world, "twin-a"), new_pod(world, "twin-b")]
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        list(
            pool.map(
                lambda p: kubelet.finish(
                    world.kube, world.ns, p, exit_code=0, message=json.dumps(RESULT)
                ),
                pods,
            )
        )
    world.wait(
        lambda: all(
            world.get("TrainingJob", n).get("status", {}).get("modelVersion")
            for n in ("twin-a", "twin-b")
        ),
        "both registered",
    )
    versions = sorted(m["spec"]["version"] for m in world.list("ModelVersion"))
    assert versions == [1, 2]
    assert {
        world.get("TrainingJob", n)["status"]["modelVersion"] for n in ("twin-a", "twin-b")
    } == {
        "churn-v1",
        "churn-v2",
    }


def test_registration_races_on_the_api_server_never_share_a_version(
    kube: Kube, namespace: str
) -> None:
    """Eight registrations at once against the real API server: create is atomic there."""
    config = OperatorConfig()

    def register(i: int) -> str:
        tj = {
            "metadata": {"name": f"race-{i}", "namespace": namespace, "uid": f"uid-{i:04d}-x"},
            "spec": {"model": "race", "dataset": {"uri": "builtin://iris"}},
        }
        return register_model(kube, tj, RESULT, config)

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        names = list(pool.map(register, range(8)))
    assert sorted(names) == sorted(f"race-v{i}" for i in range(1, 9))


def test_deleting_the_trainingjob_removes_children_but_keeps_the_model(world: World) -> None:
    world.create(trainingjob("doomed"))
    pod = new_pod(world, "doomed")
    kubelet.finish(world.kube, world.ns, pod, exit_code=0, message=json.dumps(RESULT))
    world.wait(
        lambda: world.get("TrainingJob", "doomed").get("status", {}).get("modelVersion"),
        "registration",
    )
    world.kube.delete(API_VERSION, "TrainingJob", world.ns, "doomed")
    world.wait(
        lambda: (
            not world.list("Job")
            and world.kube.get("v1", "ConfigMap", world.ns, "doomed-spec") is None
        ),
        "garbage collection of Job and ConfigMap",
    )
    assert [m["metadata"]["name"] for m in world.list("ModelVersion")] == ["churn-v1"]


def test_spec_is_immutable_once_created(world: World) -> None:
    from kubernetes.client.exceptions import ApiException

    world.create(trainingjob("frozen"))
    with pytest.raises(ApiException) as err:
        world.kube.patch(
            API_VERSION, "TrainingJob", world.ns, "frozen", {"spec": {"algorithm": "svm"}}
        )
    assert err.value.status == 422
    assert "immutable" in str(err.value.body)
