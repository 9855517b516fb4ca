"""Two operator replicas and one Lease, on the real control plane: only the holder acts; a
killed holder is replaced within the lease duration and nothing is done twice; a stopped
(partitioned) holder stops acting before the other starts, and after it is resumed it exits
instead of acting. Short timings (lease 8 s, renew deadline 5 s, retry 1 s) keep it quick.
"""

from __future__ import annotations

import json
import os
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from perennial_operator.api.group import API_VERSION, LABEL_TRAININGJOB, LABEL_TRAININGJOB_UID
from perennial_operator.k8s.kube import Kube
from perennial_operator.main import LOST_LEASE_EXIT
from support import kubelet, storage
from support.operator_process import OperatorProcess
from support.poll import until

pytestmark = pytest.mark.integration

LEASE = "perennial-operator"
LEASE_DURATION, RENEW_DEADLINE, RETRY = 8.0, 5.0, 1.0
# kopf's log line of a handler that ran to the end (a fenced, refused write fails it instead).
ACTED = re.compile(r"TrainingJob \S+: created Job")  # a TrainingJob's sync made its Job
# A write *begun*: our client's fence let it through (k8s/kube.py), or kopf patches. A request
# the fence passed before the freeze is sent when the process resumes (urllib3 logs it then):
# that window is inherent to a lease without fencing tokens, and documented, not a new act.
BEGAN_WRITE = re.compile(r"fenced write allowed: |Patching with|JSON-patching")
RESULT = {
    "outcome": "Succeeded",
    "metrics": {"accuracy": 0.9},
    "baselineMetrics": {},
    "dataset": {"uri": "builtin://iris", "sha256": "ab" * 32, "rows": 150},
    "artifact": {"format": "onnx", "sha256": "cd" * 32},
    "algorithm": "svm",
    "hyperparameters": {},
    "signature": {"inputs": [], "outputs": []},
}


def trainingjob(name: str, namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "TrainingJob",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "model": "elected",
            "task": "classification",
            "algorithm": "svm",
            "dataset": {"uri": "builtin://iris", "target": "target"},
            "resources": {"cpu": "100m", "memory": "128Mi"},
        },
    }


class Pair:
    """Two replicas campaigning for one Lease in the test namespace."""

    def __init__(self, cluster: Any, kube: Kube, namespace: str, tmp_path: Path) -> None:
        self.kube, self.ns = kube, namespace
        self.leases = client.CoordinationV1Api(cluster.api_client())
        self.replicas = {
            name: OperatorProcess(
                str(cluster.kubeconfig),
                namespace,
                tmp_path / f"{name}.log",
                pod_annotations=kubelet.LEAVE_TO_TEST,
                args=[
                    f"--lease-namespace={namespace}",
                    f"--identity={name}",
                    f"--lease-duration={LEASE_DURATION}",
                    f"--renew-deadline={RENEW_DEADLINE}",
                    f"--retry-period={RETRY}",
                ],
            )
            for name in ("red", "blue")
        }

    def start(self) -> None:
        for replica in self.replicas.values():  # back to back: the same instant, near enough
            replica.start()

    def stop(self) -> None:
        for replica in self.replicas.values():
            if replica.proc and replica.proc.poll() is None:
                os.killpg(replica.proc.pid, signal.SIGCONT)  # a stopped one cannot terminate
            replica.stop()

    def holder(self) -> str:
        try:
            lease = self.leases.read_namespaced_lease(LEASE, self.ns)
        except ApiException:
            return ""
        return str(lease.spec.holder_identity or "")

    def leader(self) -> tuple[str, str]:
        """(holder, the other), once the holder's kopf is running."""
        name = until(self.holder, timeout=60, message="a holder of the Lease", describe=self.logs)
        until(
            lambda: "acquired lease" in self.replicas[name].log_tail(400),
            timeout=30,
            message=f"{name} to log its acquisition",
            describe=self.logs,
        )
        (other,) = set(self.replicas) - {name}
        return name, other

    def log(self, name: str, since: int = 0) -> str:
        return self.replicas[name].log_path.read_bytes()[since:].decode(errors="replace")

    def logs(self) -> str:
        return "\n".join(f"--- {n}\n{r.log_tail(40)}" for n, r in self.replicas.items())

    def jobs_of(self, tj: str) -> list[dict[str, Any]]:
        return self.kube.list("batch/v1", "Job", self.ns, f"{LABEL_TRAININGJOB}={tj}")

    def wait_jobs(self, names: list[str], timeout: float = 90) -> None:
        until(
            lambda: all(self.jobs_of(n) for n in names),
            timeout=timeout,
            message=f"a Job for each of {names}",
            describe=self.logs,
        )

    def finish_training(self, tj: str) -> None:
        pod = until(
            lambda: [
                p["metadata"]["name"]
                for p in self.kube.list("v1", "Pod", self.ns, f"{LABEL_TRAININGJOB}={tj}")
                if p.get("spec", {}).get("nodeName")
            ],
            timeout=60,
            message=f"the pod of {tj} scheduled",
            describe=self.logs,
        )[0]
        kubelet.finish(self.kube, self.ns, pod, exit_code=0, message=json.dumps(RESULT))

    def model_versions(self) -> list[dict[str, Any]]:
        return self.kube.list(API_VERSION, "ModelVersion", self.ns)

    def registered(self, tj: str) -> str:
        return until(
            lambda: (
                (t := self.kube.get(API_VERSION, "TrainingJob", self.ns, tj))
                and t.get("status", {}).get("modelVersion")
            ),
            timeout=90,
            message=f"{tj} registered",
            describe=self.logs,
        )


@pytest.fixture
def pair(cluster: Any, kube: Kube, namespace: str, tmp_path: Path) -> Iterator[Pair]:
    storage.bound_claim(kube, namespace, "perennial-artifacts", str(tmp_path / "pv"))
    replicas = Pair(cluster, kube, namespace, tmp_path)
    replicas.start()
    try:
        yield replicas
    finally:
        replicas.stop()


def test_of_two_replicas_started_together_exactly_one_acts(pair: Pair) -> None:
    names = [f"together-{i}" for i in range(3)]
    for name in names:
        pair.kube.create(trainingjob(name, pair.ns))
    leader, standby = pair.leader()
    pair.wait_jobs(names)
    # Waited for, not read at once: the Jobs can exist before a handler has logged, and
    # before the standby's second try (one retry period after a create that lost the race)
    # has read whom it waits for.
    waiting = f"waiting for lease {LEASE}, held by {leader}"
    until(lambda: ACTED.search(pair.log(leader)), timeout=30, message="the leader's handler")
    until(lambda: waiting in pair.log(standby), timeout=30, message="the standby's wait")
    standby_log = pair.log(standby)
    assert not ACTED.search(standby_log)
    assert "acquired lease" not in standby_log
    assert pair.holder() == leader
    assert all(len(pair.jobs_of(n)) == 1 for n in names)


def test_a_killed_leader_is_replaced_within_the_lease_duration_and_nothing_is_done_twice(
    pair: Pair,
) -> None:
    pair.kube.create(trainingjob("before", pair.ns))
    leader, standby = pair.leader()
    pair.wait_jobs(["before"])
    pair.finish_training("before")
    first = pair.registered("before")

    pair.replicas[leader].kill()  # kill -9: no release of the Lease
    killed = time.monotonic()
    after = [f"after-{i}" for i in range(3)]
    for name in after:
        pair.kube.create(trainingjob(name, pair.ns))
    until(lambda: pair.holder() == standby, timeout=60, message="the takeover", interval=0.2)
    took = time.monotonic() - killed
    # The standby waits a full lease duration from the last renewal it saw (at most one retry
    # period before the kill), and notices at its next retry.
    assert took <= LEASE_DURATION + 2 * RETRY + 2, took
    pair.wait_jobs(after)
    pair.finish_training("after-0")
    second = pair.registered("after-0")

    assert all(len(pair.jobs_of(n)) == 1 for n in ["before", *after])
    versions = pair.model_versions()
    assert sorted(v["metadata"]["name"] for v in versions) == sorted([first, second])
    uids = [v["metadata"]["labels"][LABEL_TRAININGJOB_UID] for v in versions]
    assert len(set(uids)) == len(uids) == 2
    until(lambda: ACTED.search(pair.log(standby)), timeout=30, message="the new leader's handler")


def test_a_stopped_leader_stops_acting_before_the_other_starts_and_exits_when_resumed(
    pair: Pair,
) -> None:
    pair.kube.create(trainingjob("warm", pair.ns))
    leader, standby = pair.leader()
    pair.wait_jobs(["warm"])  # the leader's watches are live: events for it will queue
    stopped = pair.replicas[leader]
    assert stopped.proc is not None
    os.killpg(stopped.proc.pid, signal.SIGSTOP)  # a partition: no renewals, no writes
    frozen = time.monotonic()
    pair.kube.create(trainingjob("while-stopped", pair.ns))  # its watch event waits in the socket
    until(lambda: pair.holder() == standby, timeout=60, message="the takeover", interval=0.2)
    assert time.monotonic() - frozen >= RENEW_DEADLINE  # never before the holder's deadline
    pair.wait_jobs(["while-stopped"])

    offset = stopped.log_path.stat().st_size
    os.killpg(stopped.proc.pid, signal.SIGCONT)
    code = stopped.proc.wait(timeout=30)
    resumed_log = pair.log(leader, since=offset)
    assert code == LOST_LEASE_EXIT, resumed_log
    assert "lost the lease" in resumed_log
    assert "' succeeded" not in resumed_log  # no handler of any kind
    assert not BEGAN_WRITE.search(resumed_log), BEGAN_WRITE.search(resumed_log)
    assert pair.holder() == standby
    assert len(pair.jobs_of("while-stopped")) == 1
