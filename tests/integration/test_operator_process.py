"""The operator process itself: metrics and liveness endpoints (two replicas and their Lease:
test_leader_election.py)."""

from __future__ import annotations

import socket
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from perennial_operator.api.group import API_VERSION
from perennial_operator.k8s.kube import Kube
from support import kubelet, storage
from support.operator_process import OperatorProcess
from support.poll import until

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def fetch(url: str) -> str:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.read().decode()
    except OSError:
        return ""


def trainingjob(name: str, namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "TrainingJob",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "model": "m",
            "task": "classification",
            "algorithm": "svm",
            "dataset": {"uri": "builtin://iris", "target": "target"},
            "resources": {"cpu": "100m", "memory": "128Mi"},
        },
    }


def test_metrics_and_liveness_endpoints(
    cluster: Any, kube: Kube, namespace: str, tmp_path: Path
) -> None:
    storage.bound_claim(kube, namespace, "perennial-artifacts", str(tmp_path / "pv"))
    metrics, health = free_port(), free_port()
    op = OperatorProcess(
        str(cluster.kubeconfig),
        namespace,
        tmp_path / "op.log",
        pod_annotations=kubelet.LEAVE_TO_TEST,
        extra_env={"PERENNIAL_METRICS_PORT": str(metrics)},
        args=["--standalone", f"--liveness=http://127.0.0.1:{health}/healthz"],
    ).start()
    try:
        kube.create(trainingjob("metered", namespace))
        text = until(
            lambda: (
                (t := fetch(f"http://127.0.0.1:{metrics}/metrics"))
                and 'perennial_operator_reconciles_total{kind="TrainingJob"' in t
                and t
            ),
            timeout=60,
            message="a TrainingJob reconcile counted on /metrics",
            describe=op.log_tail,
        )
        assert "perennial_operator_reconcile_duration_seconds_bucket" in text
        assert 'perennial_operator_trainingjobs{phase="Pending"} 1.0' in text
        kube.delete(API_VERSION, "TrainingJob", namespace, "metered")
        until(
            lambda: (
                'trainingjobs{phase="Pending"} 0.0' in fetch(f"http://127.0.0.1:{metrics}/metrics")
            ),
            timeout=60,
            message="a deleted TrainingJob leaves the by-phase gauge",
            describe=op.log_tail,
        )
        # A ComputePool's gauges come and go with it (kwok provider, no nodes: minNodes 0).
        kube.create(
            {
                "apiVersion": API_VERSION,
                "kind": "ComputePool",
                "metadata": {"name": f"{namespace}-pool"},
                "spec": {
                    "node": {"cpu": "2", "memory": "4Gi", "pods": 10},
                    "labels": {"perennial.dev/pool": f"{namespace}-pool"},
                    "minNodes": 0,
                    "maxNodes": 3,
                    "provider": {"kwok": {}},
                },
            }
        )
        series = f'perennial_operator_computepool_max_nodes{{pool="{namespace}-pool"}} 3.0'
        until(
            lambda: series in fetch(f"http://127.0.0.1:{metrics}/metrics"),
            timeout=60,
            message="the pool's maxNodes gauge",
            describe=op.log_tail,
        )
        kube.delete(API_VERSION, "ComputePool", None, f"{namespace}-pool")
        until(
            lambda: (
                (t := fetch(f"http://127.0.0.1:{metrics}/metrics"))
                and f'pool="{namespace}-pool"' not in t
            ),
            timeout=60,
            message="a deleted ComputePool leaves every gauge",
            describe=op.log_tail,
        )
        assert '"handlers": "ok"' in until(
            lambda: fetch(f"http://127.0.0.1:{health}/healthz"), timeout=30, message="healthz"
        )
    finally:
        op.stop()
