"""What a TrainingJob status patch costs the API server, with and without the spec's CEL rule.

    .venv/bin/python bench/operator/status_cost.py [--n 1000] [--rounds 3]

The TrainingJob CRD keeps its spec immutable with `self == oldSelf` (crds/src/
trainingjob.yaml), which the API server evaluates on every write of the object, status
patches included, and those are most of the operator's writes. Would a
ValidatingAdmissionPolicy matching only the main resource (so never a status patch) save
the API server's CPU? This starts its own control plane (hack/; no Job controller, no
operator), creates N TrainingJobs, then patches every one's status N times per phase, the
CRD with the rule and without it in turn (A B A B ...), and prints the API server's and
etcd's CPU seconds per phase. Each round's patches differ from the last (a new message), so
none is a no-op.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client, config

from perennial_hack.cluster import process
from perennial_hack.cluster.control_plane import Cluster
from perennial_operator.api.group import GROUP, VERSION

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from scale import trainingjob  # noqa: E402  (the same TrainingJob as the scale bench's)

NAMESPACE = "cost"


def status_body(i: int, round_no: int) -> dict[str, Any]:
    """A status like the operator's while the pod waits (two conditions, a message)."""
    message = f"pod t{i}-train cannot be scheduled: 0/2 nodes are available (round {round_no})"
    condition = {
        "status": "False",
        "reason": "Unschedulable",
        "message": message,
        "observedGeneration": 1,
        "lastTransitionTime": "2026-12-07T06:43:39Z",
    }
    return {
        "status": {
            "phase": "Pending",
            "jobName": f"t{i}-train",
            "attempts": 1,
            "observedGeneration": 1,
            "startTime": "2026-12-07T06:43:39Z",
            "message": message,
            "algorithm": "svm",
            "conditions": [{"type": "Ready", **condition}, {"type": "Scheduled", **condition}],
        }
    }


def without_rule(crd: dict[str, Any]) -> dict[str, Any]:
    stripped = copy.deepcopy(crd)
    for version in stripped["spec"]["versions"]:
        spec = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
        spec.pop("x-kubernetes-validations", None)
    return stripped


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    no_jobs = {"kube-controller-manager": ["--controllers=*,-nodeipam,-job"]}
    with Cluster(f"status-cost-{os.getpid()}", tie_to_parent=True, extra_args=no_jobs) as c:
        kubectl = [str(c.bin_dir / "kubectl"), f"--kubeconfig={c.kubeconfig}"]

        def kubectl_run(*more: str, stdin: str | None = None) -> str:
            done = subprocess.run(
                [*kubectl, *more], input=stdin, text=True, capture_output=True, check=True
            )
            return done.stdout

        kubectl_run("apply", "--server-side", "-f", str(REPO / "crds"))
        kubectl_run("create", "namespace", NAMESPACE)
        objects = client.CustomObjectsApi(config.new_client_from_config(str(c.kubeconfig)))
        components = c.status()["components"]
        pids = {name: components[name]["pid"] for name in ("kube-apiserver", "etcd")}
        pool = ThreadPoolExecutor(6)

        def phase(label: str, each: Callable[[int], object]) -> None:
            time.sleep(3)  # the previous phase's watch events and compaction
            before = {name: process.cpu_seconds(pid) for name, pid in pids.items()}
            started = time.monotonic()
            list(pool.map(each, range(args.n)))
            wall = time.monotonic() - started
            time.sleep(1)
            used = {name: process.cpu_seconds(pid) - before[name] for name, pid in pids.items()}
            print(
                f"{label:<24} kube-apiserver {used['kube-apiserver']:6.2f} s   "
                f"etcd {used['etcd']:5.2f} s   wall {wall:5.2f} s",
                flush=True,
            )

        phase(
            f"create {args.n}",
            lambda i: objects.create_namespaced_custom_object(
                GROUP, VERSION, NAMESPACE, "trainingjobs", trainingjob(f"t{i}", NAMESPACE)
            ),
        )
        crd = yaml.safe_load((REPO / "crds" / "trainingjob.yaml").read_text())
        for round_no in range(args.rounds):
            for k, (label, doc) in enumerate(
                (("with the rule", crd), ("without", without_rule(crd)))
            ):
                live = json.loads(kubectl_run("get", "crd", crd["metadata"]["name"], "-o", "json"))
                doc = copy.deepcopy(doc)
                doc["metadata"]["resourceVersion"] = live["metadata"]["resourceVersion"]
                kubectl_run("replace", "-f", "-", stdin=json.dumps(doc))
                time.sleep(5)  # the API server's CRD handler takes the new schema
                tag = 2 * round_no + k  # a new message each phase: no patch is a no-op
                phase(
                    f"status {label}",
                    lambda i, tag=tag: objects.patch_namespaced_custom_object_status(
                        GROUP,
                        VERSION,
                        NAMESPACE,
                        "trainingjobs",
                        f"t{i}",
                        status_body(i, tag),
                    ),
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
