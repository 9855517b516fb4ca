"""Unschedulable pod -> ComputePool scale decision, side by side with a 10 s scan loop.

    .venv/bin/python bench/computepool/latency.py [--trials 20] [--kubeconfig PATH]

Without --kubeconfig a throwaway local control plane is started (hack/). Each trial creates a
pod that needs a whole new node of the pool; the latency is from the moment the real
scheduler marks it PodScheduled=False/Unschedulable to the operator's scale-up decision
(status.lastScaleUp.time, microseconds). Two clocks for the start, both printed:
  condition = the condition's lastTransitionTime (whole seconds: over-states by up to 1 s)
  observed  = when this script, polling every 10 ms, first saw the condition
Two operator modes, same binary, same machine, alternating nothing but the trigger:
  pod events = the normal operator (-n <the pods' namespace>): pod events wake the pool
  scan 10 s  = the operator watching another namespace, so it only finds pending pods on
               its 10 s resync: the shape of cluster-autoscaler's default --scan-interval=10s
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kubernetes import config

from perennial_hack.cluster.control_plane import Cluster
from perennial_operator.api.group import API_VERSION
from perennial_operator.k8s.kube import Kube

REPO = Path(__file__).resolve().parents[2]


def parse(stamp: str) -> float:
    return dt.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def wait(fn: Callable[[], Any], timeout: float, interval: float = 0.01) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = fn()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError("timed out")


def pool(name: str) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "ComputePool",
        "metadata": {"name": name},
        "spec": {
            "node": {"cpu": "2", "memory": "4Gi"},
            "labels": {"bench-pool": name},
            "minNodes": 0,
            "maxNodes": 100,
            "scaleDownDelaySeconds": 600,
            "provider": {"kwok": {}},
        },
    }


def pod(name: str, namespace: str, pool_name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "nodeSelector": {"bench-pool": pool_name},
            "containers": [
                {
                    "name": "c",
                    "image": "registry.invalid/x:1",
                    "resources": {"requests": {"cpu": "2"}},
                }
            ],
        },
    }


def unschedulable(kube: Kube, namespace: str, name: str) -> str | None:
    found = kube.get("v1", "Pod", namespace, name) or {}
    for cond in (found.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "PodScheduled" and cond.get("reason") == "Unschedulable":
            return str(cond["lastTransitionTime"])
    return None


def trial(
    kube: Kube, namespace: str, pool_name: str, index: int, settle: float
) -> tuple[float, float]:
    # Quiet first: after an action the loop re-checks every second for a while, which would
    # flatter the scan-only mode; after `settle` s it is back on its 10 s resync. The extra
    # random 0-10 s lands each pod at a random phase of that resync (a fixed pause would
    # phase-lock with it).
    time.sleep(settle + random.Random(index).uniform(0, 10))
    before = (kube.get(API_VERSION, "ComputePool", None, pool_name) or {}).get("status") or {}
    last = (before.get("lastScaleUp") or {}).get("time")
    name = f"{pool_name}-p{index}"
    kube.create(pod(name, namespace, pool_name))
    transition = wait(lambda: unschedulable(kube, namespace, name), 30)
    observed = time.time()

    def decided() -> str | None:
        status = (kube.get(API_VERSION, "ComputePool", None, pool_name) or {}).get("status") or {}
        stamp = (status.get("lastScaleUp") or {}).get("time")
        return stamp if stamp and stamp != last else None

    decision = parse(wait(decided, 60))
    wait(
        lambda: (kube.get("v1", "Pod", namespace, name) or {}).get("spec", {}).get("nodeName"),
        60,
        0.1,
    )
    return decision - parse(transition), decision - observed


def run_mode(
    kubeconfig: str, watch_ns: str, pods_ns: str, plan: tuple[int, float], log: Path
) -> list[tuple[float, float]]:
    trials, settle = plan
    env = {
        **os.environ,
        "KUBECONFIG": kubeconfig,
        "PERENNIAL_METRICS_PORT": "0",
        "PERENNIAL_COMPUTEPOOL_RESYNC_SECONDS": "10",
    }
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "perennial_operator", "--standalone", "-n", watch_ns],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    kube = Kube(config.new_client_from_config(config_file=kubeconfig))
    name = f"bench-{uuid.uuid4().hex[:5]}"
    try:
        kube.create(pool(name))
        wait(
            lambda: (kube.get(API_VERSION, "ComputePool", None, name) or {}).get("status"), 30, 0.1
        )
        return [trial(kube, pods_ns, name, i, settle) for i in range(trials)]
    finally:
        kube.delete(API_VERSION, "ComputePool", None, name)
        for node in kube.list("v1", "Node", None, f"perennial.dev/compute-pool={name}"):
            kube.delete("v1", "Node", None, node["metadata"]["name"])
        for item in kube.list("v1", "Pod", pods_ns):
            kube.delete("v1", "Pod", pods_ns, item["metadata"]["name"])
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)


def summary(label: str, samples: list[float]) -> str:
    return f"{label:<24} median {statistics.median(samples):6.2f} s   worst {max(samples):6.2f} s"


def bench(
    kubeconfig: str, trials: int, settle: float, workdir: Path
) -> dict[str, list[tuple[float, float]]]:
    kubectl = [str(Cluster().bin_dir / "kubectl"), f"--kubeconfig={kubeconfig}"]
    crds = ["apply", "--server-side", "--force-conflicts", "-f", str(REPO / "crds")]
    subprocess.run([*kubectl, *crds], check=True, capture_output=True)
    spaces = {key: f"bench-{key}-{uuid.uuid4().hex[:5]}" for key in ("pods", "other")}
    for namespace in spaces.values():
        subprocess.run(
            [*kubectl, "create", "namespace", namespace], check=True, capture_output=True
        )
    pods = spaces["pods"]
    try:
        return {
            "pod events": run_mode(
                kubeconfig, pods, pods, (trials, settle), workdir / "events.log"
            ),
            "scan 10 s": run_mode(
                kubeconfig, spaces["other"], pods, (trials, settle), workdir / "scan.log"
            ),
        }
    finally:
        for namespace in spaces.values():
            subprocess.run(
                [*kubectl, "delete", "namespace", namespace, "--wait=false"], capture_output=True
            )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument(
        "--settle",
        type=float,
        default=11.0,
        help="quiet seconds before each trial (longer than the 10 s resync)",
    )
    parser.add_argument("--kubeconfig", default=None)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench-cpool-"))
    if args.kubeconfig:
        results = bench(args.kubeconfig, args.trials, args.settle, workdir)
    else:
        with Cluster(f"bench-cpool-{os.getpid()}", tie_to_parent=True) as cluster:
            results = bench(str(cluster.kubeconfig), args.trials, args.settle, workdir)
    print(f"unschedulable -> scale decision, {args.trials} trials per mode (logs in {workdir})")
    for mode, samples in results.items():
        print(summary(f"{mode} (condition)", [a for a, _ in samples]))
        print(summary(f"{mode} (observed)", [b for _, b in samples]))
    print(
        "cluster-autoscaler default: --scan-interval=10s, so 0-10 s (5 s on average) of "
        "waiting for the next scan before its simulation even starts"
    )
    print(json.dumps({m: [[round(a, 3), round(b, 3)] for a, b in s] for m, s in results.items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
