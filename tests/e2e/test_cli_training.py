"""The CLI on a real training run: `perennial watch` follows a TrainingJob trained by a real
perennial-train process (through the local runtime) to Succeeded, `lineage` traces the
registered version back to its data, and `logs` prints the training pod's own lines."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from perennial_operator.api.group import API_VERSION
from perennial_operator.k8s.kube import Kube
from support.argocd_health import health
from support.cli_process import perennial

pytestmark = pytest.mark.e2e


def trainingjob(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION, "kind": "TrainingJob", "metadata": {"name": name},
        "spec": {"model": "bc", "task": "classification", "algorithm": "logistic_regression",
                 "dataset": {"uri": "builtin://breast_cancer", "target": "target", "seed": 7},
                 "resources": {"cpu": "100m", "memory": "256Mi"}, "backoffLimit": 0, **spec},
    }  # fmt: skip


@pytest.fixture
def ready(kube: Kube, namespace: str, operator: Any, pod_runtime: Any, artifacts: Path) -> Any:
    return operator


def test_watch_lineage_and_logs_of_a_real_training(
    cluster: Any, kube: Kube, namespace: str, ready: Any
) -> None:
    kube.create({**trainingjob("bc-1"), "metadata": {"name": "bc-1", "namespace": namespace}})
    with ThreadPoolExecutor(1) as pool:  # `logs -f` from the start, while `watch` runs
        followed = pool.submit(perennial, cluster.kubeconfig, namespace, "logs", "bc-1", "-f")
        watched = perennial(cluster.kubeconfig, namespace, "watch", "bc-1", "--timeout", "240")
        follow = followed.result(timeout=300)
    assert watched.returncode == 0, watched.stdout + watched.stderr + ready.log_tail()
    assert follow.returncode == 0, follow.stderr
    assert follow.stdout.index("validating passed") < follow.stdout.index("] done result.json")
    assert "bc-1: Succeeded trained and registered as bc-v1" in watched.stdout
    tj = kube.get(API_VERSION, "TrainingJob", namespace, "bc-1") or {}
    (ready_condition,) = [c for c in tj["status"]["conditions"] if c["type"] == "Ready"]
    assert ready_condition["status"] == "True"
    # Argo CD shows the kstatus Ready condition's message
    assert health("TrainingJob", tj) == {"status": "Healthy", "message": ready_condition["message"]}

    lineage = perennial(cluster.kubeconfig, namespace, "lineage", "bc-v1")
    assert lineage.returncode == 0, lineage.stderr
    assert "builtin://breast_cancer" in lineage.stdout and "569 rows" in lineage.stdout
    assert "bc-1" in lineage.stdout and "logistic_regression" in lineage.stdout
    assert "started by: a person or a pipeline" in lineage.stdout

    logs = perennial(cluster.kubeconfig, namespace, "logs", "bc-1")
    assert logs.returncode == 0, logs.stderr
    lines = logs.stdout.splitlines()
    # perennial-train's own progress lines, validate's first, then train's
    assert any("validating passed" in line for line in lines), logs.stdout
    assert any("] done result.json sha256" in line for line in lines), logs.stdout


def test_watch_exits_1_when_the_data_checks_fail(
    cluster: Any, kube: Kube, namespace: str, ready: Any
) -> None:
    manifest = trainingjob("too-few", validation={"minRows": 100000})
    kube.create({**manifest, "metadata": {"name": "too-few", "namespace": namespace}})
    watched = perennial(cluster.kubeconfig, namespace, "watch", "too-few", "--timeout", "180")
    assert watched.returncode == 1, watched.stdout + watched.stderr
    assert "too-few: Failed DataValidationFailed" in watched.stdout
    tj = kube.get(API_VERSION, "TrainingJob", namespace, "too-few") or {}
    verdict = health("TrainingJob", tj)
    assert verdict["status"] == "Degraded" and "dataset_rows_below_minimum" in verdict["message"]
    logs = perennial(cluster.kubeconfig, namespace, "logs", "too-few")
    assert logs.returncode == 0, logs.stderr
    assert "dataset_rows_below_minimum" in logs.stdout
