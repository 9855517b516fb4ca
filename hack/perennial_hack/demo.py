"""`make demo`: the whole loop on the local cluster, narrated.

Starts (or reuses) the local control plane and a real node (kubelet, containerd) with the
built images loaded, installs the CRDs, runs the operator and Perennial Studio (the web
dashboard) in the background, trains a model with a TrainingJob (a pod of perennial/runtime),
serves it with an InferenceService and asks it for predictions. DEMO_RUNTIME=local runs the
pods through the host-process local runtime instead (no images). Everything keeps running
afterwards for you to explore; `make demo-down` stops it. DEMO_TEARDOWN=1 stops it at the end
instead.

    python -m perennial_hack.demo [--name CLUSTER] [down]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from perennial_hack.cluster import process
from perennial_hack.cluster.control_plane import Cluster, ClusterError
from perennial_hack.images.build import records
from perennial_hack.local_runtime.api import Api
from perennial_hack.local_runtime.claims import claim_bound, ensure_claim
from perennial_hack.local_runtime.runtime import ANNOTATIONS
from perennial_hack.local_runtime.volumes import Layout
from perennial_hack.node import storage
from perennial_hack.node.config import NAMESPACE_ANNOTATIONS
from perennial_hack.node.node import LocalNode, NodeError

REPO = Path(__file__).resolve().parents[2]
NAMESPACE = "demo"
CLAIM = "perennial-artifacts"
MODEL = "breast-cancer"
STUDIO_PORT = int(os.environ.get("STUDIO_PORT", "8765"))


def say(text: str = "") -> None:
    print(text, flush=True)


def wait(check: Callable[[], Any], timeout: float, what: str,
         describe: Callable[[], str] | None = None) -> None:  # fmt: skip
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            extra = f"\n{describe()}" if describe else ""
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}{extra}")
        time.sleep(0.5)


def runs(pid: int, name: str) -> bool:
    """Is pid still the demo's `name` process (and not a recycled pid)?"""
    marker = {
        "operator": "perennial-operator",
        "local-runtime": "perennial_hack.local_runtime",
        "studio": "perennial-studio",
    }
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return False
    return marker.get(name, "\0") in cmdline and process.alive(pid)


def namespace(name: str, annotations: dict[str, str]) -> dict[str, Any]:
    labels = {f"pod-security.kubernetes.io/{m}": "restricted" for m in ("enforce", "warn")}
    meta = {"name": name, "labels": labels, "annotations": annotations}
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": meta}


def trainingjob(example: Path, taken: list[str]) -> dict[str, Any]:
    """examples/trainingjob.yaml under the next free name (the spec is immutable), with a
    short AutoML budget and no ComputePool (the demo has none)."""
    tj: dict[str, Any] = yaml.safe_load(example.read_text())
    base = tj["metadata"]["name"].rsplit("-", 1)[0]
    number = 1
    while f"{base}-{number}" in taken:
        number += 1
    tj["metadata"]["name"] = f"{base}-{number}"
    tj["spec"].pop("computePool", None)
    tj["spec"]["automl"]["timeBudgetSeconds"] = 20
    return tj


def inferenceservice(model: str, version: int) -> dict[str, Any]:
    return {
        "apiVersion": "perennial.dev/v1alpha1", "kind": "InferenceService",
        "metadata": {"name": model},
        "spec": {"model": {"name": model, "version": version}, "replicas": 1,
                 "resources": {"cpu": "1", "memory": "512Mi"}},
    }  # fmt: skip


def follow_phases(get: Callable[[], dict[str, Any]], out: Callable[[str], None]) -> dict[str, Any]:
    """Print each phase as it is reached; return the object once it is done."""
    started, last = time.monotonic(), None
    while True:
        obj = get()
        status = obj.get("status", {})
        phase = status.get("phase") or "Pending"
        if phase != last:
            out(f"  {time.monotonic() - started:6.1f}s  {phase}")
            last = phase
        if phase == "Failed" or (phase == "Succeeded" and status.get("modelVersion")):
            return obj
        if time.monotonic() - started > 600:
            raise TimeoutError("the TrainingJob did not finish in 10 minutes")
        time.sleep(0.5)


def short_metrics(metrics: dict[str, Any]) -> str:
    return "  ".join(f"{k}={v:.4f}" for k, v in sorted(metrics.items())
                     if isinstance(v, int | float))  # fmt: skip


def predict(url: str, model: str, out: Callable[[str], None]) -> None:
    from sklearn.datasets import load_breast_cancer  # the runtime extra; only needed here

    data = load_breast_cancer()
    rows = [0, 19, 100, 568]
    body = {"instances": data.data[rows].tolist(), "parameters": {"probabilities": True}}
    request = urllib.request.Request(f"{url}/v1/models/{model}:predict", method="POST",
                                     data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})  # fmt: skip
    with urllib.request.urlopen(request, timeout=10) as resp:
        answer = json.loads(resp.read())
    out(f"\npredict   POST {url}/v1/models/{model}:predict ({len(rows)} rows of breast_cancer)")
    for row, label, probs in zip(rows, answer["predictions"], answer["probabilities"], strict=True):
        truth = data.target_names[data.target[row]]
        out(f"  row {row:>3}: {data.target_names[int(label)]:<9} p={max(probs):.3f}   "
            f"(truth: {truth})")  # fmt: skip


class Demo:
    def __init__(self, name: str) -> None:
        self.cluster = Cluster(name, log=lambda m: say(f"  {m.strip()}"))
        self.folder = self.cluster.run_dir / "demo"
        self.kubectl_bin = str(self.cluster.bin_dir / "kubectl")
        self.started_cluster = False
        self.on_node = os.environ.get("DEMO_RUNTIME", "node") != "local"
        images = records()
        self.image = images["runtime"].tag if "runtime" in images else ""
        archives = [Path(r.archive) for r in images.values()]
        self.node = LocalNode(self.cluster, images=archives, log=lambda m: say(f"  {m.strip()}"))

    def kubectl(self, *args: str, stdin: str | None = None) -> str:
        argv = [self.kubectl_bin, f"--kubeconfig={self.cluster.kubeconfig}", *args]
        done = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise ClusterError(f"kubectl {' '.join(args[:3])}: {done.stderr.strip()}")
        return done.stdout

    # --- setting up -----------------------------------------------------------------------

    def up(self) -> Api:
        say("cluster")
        self.started_cluster = self.cluster.start()
        crds = sorted(str(p) for p in (REPO / "crds").glob("*.yaml"))
        self.kubectl("apply", "--server-side", "--force-conflicts", *[f"-f={p}" for p in crds])
        self.kubectl("wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")
        say(f"  {len(crds)} CRDs installed")
        annotations = NAMESPACE_ANNOTATIONS if self.on_node else {}
        manifest = namespace(NAMESPACE, annotations)
        self.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(manifest))
        where = f"node {self.node.name}" if self.on_node else "the local runtime"
        say(f"  namespace {NAMESPACE} (Pod Security: restricted; pods run on {where})")
        api = Api(str(self.cluster.kubeconfig))
        if self.on_node:
            folder = storage.ensure_claim(api, self.node.layout, NAMESPACE, CLAIM)
        else:
            folder = ensure_claim(api, Layout(self.folder / "state"), NAMESPACE, CLAIM)
        wait(lambda: claim_bound(api, NAMESPACE, CLAIM), 30, f"claim {CLAIM} bound")
        say(f"  claim {CLAIM} bound to {folder}")
        return api

    def start_node(self) -> None:
        if not self.on_node:
            return
        if not self.image:
            raise ClusterError("no runtime image: run `make images`")
        say("node")
        self.node.start()

    def start_processes(self) -> None:
        self.stop_processes(quiet=True)  # a previous demo's operator and runtime
        self.folder.mkdir(parents=True, exist_ok=True)
        os.environ |= {
            "KUBECONFIG": str(self.cluster.kubeconfig),
            "PERENNIAL_POD_ANNOTATIONS": json.dumps({} if self.on_node else ANNOTATIONS),
            "PERENNIAL_METRICS_PORT": "0",
        }
        if self.on_node:
            os.environ["PERENNIAL_RUNTIME_IMAGE"] = self.image
        bin_dir = Path(sys.executable).parent
        argvs = {
            "operator": [str(bin_dir / "perennial-operator"), "--standalone", "-n", NAMESPACE],
            "local-runtime": [sys.executable, "-m", "perennial_hack.local_runtime",
                              "--kubeconfig", str(self.cluster.kubeconfig),
                              "--state", str(self.folder / "state"), "--namespace", NAMESPACE],
            "studio": [str(bin_dir / "perennial-studio"), "--kubeconfig",
                       str(self.cluster.kubeconfig), "--port", str(STUDIO_PORT),
                       "--allow-actions", "--scrape-interval", "5"],
        }  # fmt: skip
        if self.on_node:
            del argvs["local-runtime"]
        pids = {}
        for name, argv in argvs.items():
            log = self.folder / f"{name}.log"
            pids[name] = process.spawn(argv, log, tie_to_parent=False).pid
            say(f"  {name:<14} pid {pids[name]:<7} log {log}")
        (self.folder / "pids.json").write_text(json.dumps(pids))
        wait(self.studio_ready, 60, "Perennial Studio",
             describe=lambda: (self.folder / "studio.log").read_text()[-2000:])  # fmt: skip
        say(f"  Perennial Studio    {self.studio_url()}   (follow the demo there)")

    def studio_url(self) -> str:
        return f"http://127.0.0.1:{STUDIO_PORT}"

    def studio_ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.studio_url()}/readyz", timeout=2) as resp:
                return bool(resp.status == 200)
        except OSError:
            return False

    def stop_processes(self, quiet: bool = False) -> None:
        """Stop the operator and runtime a demo started (checked by command line)."""
        try:
            pids = json.loads((self.folder / "pids.json").read_text())
        except (OSError, ValueError):
            return
        ours = [pid for name, pid in pids.items() if runs(pid, name)]
        process.stop(ours)
        (self.folder / "pids.json").unlink(missing_ok=True)
        if ours and not quiet:
            say(f"  stopped the demo's processes: operator, Studio, ... (pids {ours})")

    # --- the loop -------------------------------------------------------------------------

    def train(self) -> dict[str, Any]:
        tj = trainingjob(REPO / "examples/trainingjob.yaml", self.existing("trainingjobs"))
        name = tj["metadata"]["name"]
        self.kubectl("apply", "-n", NAMESPACE, "-f", "-", stdin=yaml.safe_dump(tj))
        budget = tj["spec"]["automl"]["timeBudgetSeconds"]
        say(f"\ntrain     TrainingJob {name}: AutoML on builtin://breast_cancer, {budget}s budget")
        done = follow_phases(lambda: self.get("trainingjob", name), say)
        status = done.get("status", {})
        if status.get("phase") != "Succeeded":
            failed = [c for c in status.get("conditions", []) if c["type"] == "Failed"]
            raise ClusterError(f"training failed: {failed[0]['message'] if failed else status}")
        say(f"          metrics {short_metrics(status.get('metrics', {}))}")
        say(f"          registered ModelVersion {status['modelVersion']}")
        say("\n$ kubectl get perennial -n demo")
        say(self.kubectl("get", "perennial", "-n", NAMESPACE).rstrip())
        return done

    def serve(self, version: int) -> str:
        isvc = inferenceservice(MODEL, version)
        self.kubectl("apply", "-n", NAMESPACE, "-f", "-", stdin=yaml.safe_dump(isvc))
        say(f"\nserve     InferenceService {MODEL} -> {MODEL}-v{version}")
        started = time.monotonic()
        wait(lambda: self.ready_pod_ip(MODEL, version), 180, "a Ready serving pod",
                   describe=lambda: self.kubectl("get", "pods", "-n", NAMESPACE))  # fmt: skip
        url = f"http://{self.ready_pod_ip(MODEL, version)}:8080"
        say(f"          Ready in {time.monotonic() - started:.1f}s at {url} (the pod's own IP)")
        return url

    def ready_pod_ip(self, name: str, version: int) -> str | None:
        selector = f"perennial.dev/inferenceservice={name},perennial.dev/model-version={version}"
        pods = json.loads(self.kubectl("get", "pods", "-n", NAMESPACE, "-l", selector, "-o=json"))
        for pod in pods["items"]:
            conditions = pod.get("status", {}).get("conditions", [])
            if any(c["type"] == "Ready" and c["status"] == "True" for c in conditions):
                return str(pod["status"]["podIP"])
        return None

    def get(self, kind: str, name: str) -> dict[str, Any]:
        return dict(json.loads(self.kubectl("get", kind, name, "-n", NAMESPACE, "-o=json")))

    def existing(self, plural: str) -> list[str]:
        out = self.kubectl("get", plural, "-n", NAMESPACE, "-o=name")
        return [line.rsplit("/", 1)[-1] for line in out.split()]

    # --- the end --------------------------------------------------------------------------

    def summary(self) -> None:
        say("\nrunning now")
        say(f"  cluster {self.cluster.name!r:<11} {self.cluster.run_dir} (logs/)")
        say(f"  Perennial Studio    {self.studio_url()}   (the web dashboard; actions on)")
        say(f"                      model page: {self.studio_url()}/ns/{NAMESPACE}/models/{MODEL}")
        say(f"  operator, runtime   {self.folder} (operator.log, local-runtime.log, studio.log)")
        if self.on_node:
            say(f"  node {self.node.name}  {self.node.layout.root} (logs/, pod-logs/)")
        say(f"  try                 export KUBECONFIG={self.cluster.kubeconfig}")
        say(f"                      {self.kubectl_bin} get perennial -n {NAMESPACE}")
        name = "" if self.cluster.name == "default" else f" CLUSTER_NAME={self.cluster.name}"
        say(f"  stop everything     make demo-down{name}   (cluster-down: the cluster only)")

    def teardown(self) -> None:
        say("\nteardown (DEMO_TEARDOWN=1)")
        self.stop_processes()
        self.node.stop()
        if self.started_cluster:
            self.cluster.stop()
        else:
            say("  the cluster was up before the demo: left running (make cluster-down)")


def run(name: str) -> int:
    demo = Demo(name)
    say("perennial demo: train, register, serve and predict on a local cluster")
    try:
        demo.up()
        demo.start_node()
        demo.start_processes()
        trained = demo.train()
        version = int(trained["status"]["modelVersion"].rsplit("-v", 1)[1])
        url = demo.serve(version)
        predict(url, MODEL, say)
    except (ClusterError, NodeError, TimeoutError) as err:
        say(f"\ndemo failed: {err}")
        say(f"  logs: {demo.folder} and {demo.cluster.run_dir / 'logs'}")
        if os.environ.get("DEMO_TEARDOWN") == "1":
            demo.teardown()
        return 1
    if os.environ.get("DEMO_TEARDOWN") == "1":
        demo.teardown()
    else:
        demo.summary()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m perennial_hack.demo", description=__doc__)
    parser.add_argument("action", nargs="?", choices=["run", "down"], default="run")
    parser.add_argument("--name", default="default", help="cluster name (make: CLUSTER_NAME)")
    args = parser.parse_args(argv)
    if args.action == "down":
        demo = Demo(args.name)
        demo.stop_processes()
        demo.node.stop()
        demo.cluster.stop()
        return 0
    return run(args.name)


if __name__ == "__main__":
    sys.exit(main())
