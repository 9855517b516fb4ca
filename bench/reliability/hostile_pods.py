"""Hostile serving pods vs the operator: does it still act on a new TrainingJob at once, and
does its memory stay put, while the pods it scrapes trickle bytes or answer endlessly?

    .venv/bin/python bench/reliability/hostile_pods.py [--services 8] [--probes 10]

Starts its own local control plane (hack/, kwok nodes) and runs the operator twice, side by
side in the same cluster, each in a namespace of its own with --services InferenceServices
(one replica, drift measured every 10 s, so the operator scrapes /metrics and the drift
profile of every pod):

  quiet    the pods answer as perennial-serve does (small /metrics, a profile)
  hostile  half the pods trickle one byte every 0.2 s forever, the other half stream
           samples without end (a 1 GiB answer, as the reader sees it)

The pods are played by the bench (tests/support/inferenceservice.FakePods: kwok leaves them
to it; each gets its own 127.77.x.y address and the operator reaches them there). Once every
service serves, the bench creates --probes TrainingJobs one after another and times each
until its Job exists (time to act), then lets the scrapes go on --hold-s seconds, sampling
the operator's RSS every 0.5 s throughout.
The operator runs with the allocator settings of its image (MALLOC_MMAP_THRESHOLD_ and
PYTHONMALLOC, read from operator/Dockerfile; --glibc-default leaves them out). Figures are
printed side by side; nothing here passes or fails.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import IO, Any

from kubernetes import client, config

from perennial_hack.cluster import process
from perennial_hack.cluster.control_plane import Cluster
from perennial_hack.images.spec import allocator_env
from perennial_hack.local_runtime.claims import claim_manifests
from perennial_operator.api.group import API_VERSION
from perennial_operator.k8s.kube import Kube

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests"))  # the kubelet stand-in of the serving tests
from support.inferenceservice import CLAIM, FakePods  # noqa: E402

SAMPLE = b'perennial_requests_total{model="m",version="1",protocol="v2",code="200"} 1\n'


class HostilePods(FakePods):
    """FakePods whose pods never finish an answer: even-numbered addresses trickle, odd
    ones stream samples without end."""

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        pods = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                trickle = int(self.connection.getsockname()[0].rsplit(".", 1)[1]) % 2 == 0
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "text/plain; version=0.0.4")
                    self.end_headers()
                    while not pods.stop.is_set():
                        if trickle:
                            self.wfile.write(b"#")
                            self.wfile.flush()
                            time.sleep(0.2)
                        else:
                            self.wfile.write(SAMPLE * 4096)
                except OSError:
                    pass  # the operator gave up on us, as it should

            def log_message(self, *_: Any) -> None:
                pass

        return Handler


def rss_mb(pid: int) -> float:
    return process.rss_kib(pid) / 1024


def resource(kind: str, name: str, ns: str, spec: dict[str, Any]) -> dict[str, Any]:
    meta = {"name": name, "namespace": ns}
    return {"apiVersion": API_VERSION, "kind": kind, "metadata": meta, "spec": spec}


def serving_world(kube: Kube, core: client.CoreV1Api, ns: str, services: int, folder: Path) -> None:
    core.create_namespace({"metadata": {"name": ns}})
    pv, pvc = claim_manifests(ns, CLAIM, folder)
    core.create_persistent_volume(pv)
    core.create_namespaced_persistent_volume_claim(ns, pvc)
    kube.create(resource("ModelVersion", "churn-v1", ns, {
        "model": "churn", "version": 1, "stage": "None",
        "artifact": {"uri": f"pvc://{CLAIM}/models/churn/v1", "sha256": "01" * 32}}))  # fmt: skip
    for i in range(services):
        kube.create(resource("InferenceService", f"svc-{i}", ns, {
            "model": {"name": "churn", "version": 1},
            "resources": {"cpu": "50m", "memory": "64Mi"},
            "monitoring": {"drift": {"intervalSeconds": 10}}}))  # fmt: skip


def trainingjob(name: str, ns: str) -> dict[str, Any]:
    return resource("TrainingJob", name, ns, {
        "model": "probe", "task": "classification", "algorithm": "logistic_regression",
        "dataset": {"uri": "builtin://iris", "target": "target"},
        "resources": {"cpu": "100m", "memory": "128Mi"}})  # fmt: skip


def run_mode(
    mode: str, cluster: Cluster, kube: Kube, core: client.CoreV1Api, args: argparse.Namespace,
    workdir: Path,
) -> dict[str, Any]:  # fmt: skip
    ns = mode
    pods_class = HostilePods if mode == "hostile" else FakePods
    with pods_class(kube, ns) as pods:
        serving_world(kube, core, ns, args.services, workdir / f"claim-{mode}")
        log: IO[bytes] = (workdir / f"operator-{mode}.log").open("ab")
        env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig),
               "PERENNIAL_METRICS_PORT": "0",
               "PERENNIAL_POD_ANNOTATIONS": json.dumps({"kwok.x-k8s.io/status": "custom"}),
               "PERENNIAL_POD_URL_TEMPLATE": f"http://{{ip}}:{pods.port}",
               **({} if args.glibc_default else allocator_env("operator"))}  # fmt: skip
        operator = subprocess.Popen(
            [sys.executable, "-m", "perennial_operator", "--standalone", "-n", ns],
            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        rss: list[float] = []
        stop = threading.Event()

        def sample() -> None:
            while not stop.wait(0.5):
                rss.append(rss_mb(operator.pid))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            deadline = time.monotonic() + 180
            serving = 0
            while time.monotonic() < deadline:
                items = kube.list(API_VERSION, "InferenceService", ns)
                serving = sum(bool((i.get("status") or {}).get("currentVersion")) for i in items)
                if serving == args.services:
                    break
                time.sleep(1)
            time.sleep(args.warm_s)  # the drift timers start scraping (every 10 s each)
            acts: list[float] = []
            for i in range(args.probes):
                name = f"probe-{i}"
                started = time.monotonic()
                kube.create(trainingjob(name, ns))
                while kube.get("batch/v1", "Job", ns, f"{name}-train") is None:
                    if time.monotonic() - started > 300:
                        break
                    time.sleep(0.05)
                acts.append(time.monotonic() - started)
                time.sleep(args.gap_s)
            time.sleep(args.hold_s)  # more scrapes: does the RSS level off?
            scraped = len(pods.scraped) if mode == "quiet" else None
            return {
                "mode": mode,
                "services_serving": serving,
                "time_to_act_s": {
                    "median": round(statistics.median(acts), 2),
                    "max": round(max(acts), 2),
                    "all": [round(a, 2) for a in acts],
                },
                "operator_rss_mb": {
                    "max": round(max(rss), 1),
                    "end": round(rss[-1], 1),
                    "samples": len(rss),
                    "every_10_s": [round(x) for x in rss[::20]],
                },
                "pods_scraped_quiet": scraped,
                "load": [round(x, 2) for x in os.getloadavg()],
            }
        finally:
            stop.set()
            process.stop([operator.pid], grace_s=30)  # SIGTERM, then SIGKILL
            operator.wait()
            log.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=8)
    parser.add_argument("--probes", type=int, default=10)
    parser.add_argument("--warm-s", type=float, default=25.0)
    parser.add_argument("--gap-s", type=float, default=2.0)
    parser.add_argument("--hold-s", type=float, default=60.0)
    parser.add_argument("--glibc-default", action="store_true")
    parser.add_argument("--modes", type=lambda s: s.split(","), default=["quiet", "hostile"])
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench-hostile-"))
    with Cluster(f"bench-hostile-{os.getpid()}", tie_to_parent=True) as cluster:
        kubeconfig = str(cluster.kubeconfig)
        kubectl = [str(cluster.bin_dir / "kubectl"), f"--kubeconfig={kubeconfig}"]
        subprocess.run([*kubectl, "apply", "--server-side", "-f", str(REPO / "crds")],
                       check=True, capture_output=True)  # fmt: skip
        api = config.new_client_from_config(config_file=kubeconfig)
        kube, core = Kube(api), client.CoreV1Api(api)
        results = [run_mode(m, cluster, kube, core, args, workdir) for m in args.modes]
    if len(results) != 2:
        print(json.dumps(results, indent=2))
        return 0
    quiet, hostile = results
    results.append({
        "time_to_act_median_ratio": round(
            hostile["time_to_act_s"]["median"] / quiet["time_to_act_s"]["median"], 2),
        "rss_max_ratio": round(
            hostile["operator_rss_mb"]["max"] / quiet["operator_rss_mb"]["max"], 2),
    })  # fmt: skip
    print(f"(operator logs in {workdir})")
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
