"""Install as a user would, on a cluster whose only node is real (as kind makes one):
`kubectl apply -k manifests/`, then `kubectl apply -f examples/trainingjob.yaml`, and
nothing else made by hand. The operator runs from its image in its Deployment, with the
RBAC of manifests/, and creates the artifact claim (the node's default StorageClass
provisions it); the example trains in the runtime image and registers a ModelVersion. The
Studio runs from the operator image too (`command: [perennial-studio]`) and gets Ready.

Needs the real node: with --e2e-runtime=local (no images) it is skipped.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from perennial_hack.cluster.control_plane import Cluster
from perennial_hack.images.build import records, stale
from perennial_hack.node.node import LocalNode
from support.cluster_fixtures import REPO, TestCluster
from support.poll import until

pytestmark = pytest.mark.e2e


@pytest.fixture
def kind_like(request: pytest.FixtureRequest) -> Iterator[tuple[TestCluster, LocalNode]]:
    if request.config.getoption("--e2e-runtime") == "local":
        pytest.skip("installs the operator image on a real node; the fast mode runs no images")
    for name in ("runtime", "operator"):
        problem = stale(name)
        if problem:
            pytest.fail(problem)
    cluster = Cluster(f"install-{os.getpid()}", nodes=(), tie_to_parent=True)
    cluster.start()
    archives = [Path(r.archive) for r in records().values()]
    node = LocalNode(cluster, images=archives, taint=False, tie_to_parent=True)
    try:
        node.start()
        yield TestCluster(cluster.kubeconfig, str(cluster.bin_dir / "kubectl"), cluster), node
    finally:
        node.stop(quiet=True)
        cluster.stop(quiet=True)
        if not request.session.testsfailed:
            shutil.rmtree(cluster.run_dir, ignore_errors=True)


def apply_manifests(tc: TestCluster) -> None:
    """As the README says: the first apply may stop at kopf's peering object, whose CRD it
    creates in the same pass; the next one succeeds."""
    deadline = time.monotonic() + 60
    while True:
        done = tc.kubectl("apply", "-k", str(REPO / "manifests"), check=False)
        if done.returncode == 0:
            return
        if "KopfPeering" not in done.stderr or time.monotonic() > deadline:
            raise AssertionError(done.stderr)
        time.sleep(1)


def get(tc: TestCluster, *args: str) -> dict[str, Any]:
    done = tc.kubectl("get", *args, "-o", "json", check=False)
    result: dict[str, Any] = json.loads(done.stdout) if done.returncode == 0 else {}
    return result


def test_apply_the_manifests_then_the_example_and_it_trains(kind_like) -> None:
    tc, node = kind_like
    apply_manifests(tc)
    tc.kubectl("apply", "-f", str(REPO / "examples" / "trainingjob.yaml"))

    def describe() -> str:
        pods = get(tc, "pods", "-A").get("items", [])
        brief = [
            (p["metadata"]["namespace"], p["metadata"]["name"], p.get("status", {})) for p in pods
        ]
        operator = [
            node.container_log("perennial-system", p[1], "operator")[-3000:]
            for p in brief
            if p[0] == "perennial-system"
        ]
        return json.dumps(brief)[-4000:] + "\n" + "\n".join(operator) + node.log_tails(10)

    def done() -> dict[str, Any] | None:
        status = get(tc, "trainingjob", "breast-cancer-1").get("status", {})
        return status if status.get("phase") == "Failed" or status.get("modelVersion") else None

    status = until(
        done, timeout=600, message="the example TrainingJob to finish", describe=describe
    )
    assert status["phase"] == "Succeeded", describe()
    claim = get(tc, "pvc", "perennial-artifacts", "-n", "default")
    assert claim["status"]["phase"] == "Bound"  # the operator made it; the node provisioned it
    assert "ownerReferences" not in claim["metadata"]
    mv = get(tc, "modelversion", status["modelVersion"])
    assert mv["spec"]["artifact"]["uri"].startswith("pvc://perennial-artifacts/")
    pods = "pods", "-n", "perennial-system", "-l"
    operators = get(tc, *pods, "app.kubernetes.io/name=perennial-operator")["items"]
    deployment = get(tc, "deployment", "perennial-operator", "-n", "perennial-system")
    assert len(operators) == deployment["spec"]["replicas"] == 2  # one leads, one waits
    # The operator image, on the node.
    assert {p["spec"]["nodeName"] for p in operators} == {node.name}

    def studio_ready() -> bool:
        found = get(tc, *pods, "app.kubernetes.io/name=perennial-studio").get("items", [])
        conditions = [c for p in found for c in p.get("status", {}).get("conditions", [])]
        return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)

    # Its readiness probe answers only once its watches have listed: it reads the cluster.
    until(studio_ready, timeout=180, message="the Studio ready", describe=describe)
