"""`kubectl apply -k manifests/` ONCE on a fresh control plane (its own, not the session's:
the session's already has our CRDs) installs everything: the CRDs are established and the
operator Deployment's two pods are admitted (Pod Security "restricted" in perennial-system)
and scheduled. kwok plays the nodes, so no image runs; the operator itself is tested as a
process elsewhere.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from perennial_hack.cluster.control_plane import Cluster
from support.cluster_fixtures import REPO, TestCluster
from support.poll import until

pytestmark = pytest.mark.integration


@pytest.fixture
def fresh(request: pytest.FixtureRequest) -> Iterator[TestCluster]:
    cluster = Cluster(f"onepass-{os.getpid()}", tie_to_parent=True)
    cluster.start()
    try:
        yield TestCluster(cluster.kubeconfig, str(cluster.bin_dir / "kubectl"))
    finally:
        cluster.stop(quiet=True)
        if not request.session.testsfailed:
            shutil.rmtree(cluster.run_dir, ignore_errors=True)


def get(tc: TestCluster, *args: str) -> dict[str, Any]:
    done = tc.kubectl("get", *args, "-o", "json", check=False)
    return json.loads(done.stdout) if done.returncode == 0 else {}


def test_one_apply_of_the_manifests_installs_everything(fresh: TestCluster) -> None:
    applied = fresh.kubectl("apply", "-k", str(REPO / "manifests"), check=False)
    assert applied.returncode == 0, applied.stderr

    ours = [
        crd["metadata"]["name"]
        for crd in get(fresh, "crd").get("items", [])
        if crd["spec"]["group"] == "perennial.dev"
    ]
    assert len(ours) == 5, ours
    for name in ours:
        fresh.kubectl("wait", "--for=condition=Established", f"crd/{name}", "--timeout=60s")

    def describe() -> str:
        events = get(fresh, "events", "-n", "perennial-system").get("items", [])
        return "\n".join(f"{e['reason']}: {e['message']}" for e in events[-20:])

    def admitted() -> list[dict[str, Any]] | None:
        pods = get(
            fresh,
            "pods",
            "-n",
            "perennial-system",
            "-l",
            "app.kubernetes.io/name=perennial-operator",
        ).get("items", [])
        scheduled = [p for p in pods if p["spec"].get("nodeName")]
        return scheduled if len(scheduled) == 2 else None

    pods = until(admitted, timeout=120, message="two operator pods admitted", describe=describe)
    for pod in pods:
        assert pod["spec"]["serviceAccountName"] == "perennial-operator"
        env = {e["name"] for e in pod["spec"]["containers"][0]["env"]}
        assert {"POD_NAME", "POD_NAMESPACE"} <= env
    # The ReplicaSet created both without a refusal (Pod Security, quota, anything).
    assert "FailedCreate" not in describe()
    pdb = get(fresh, "pdb", "perennial-operator", "-n", "perennial-system")
    assert pdb["spec"]["minAvailable"] == 1
    # The operator's service account may take its Lease and nothing else in coordination.k8s.io.
    sa = "system:serviceaccount:perennial-system:perennial-operator"
    can = fresh.kubectl(
        "auth", "can-i", "update", "lease/perennial-operator", "-n", "perennial-system",
        f"--as={sa}", check=False,
    )  # fmt: skip
    assert can.stdout.strip() == "yes"
    cannot = fresh.kubectl(
        "auth", "can-i", "update", "lease/kube-scheduler", "-n", "kube-system",
        f"--as={sa}", check=False,
    )  # fmt: skip
    assert cannot.stdout.strip() == "no"
