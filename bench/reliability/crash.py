"""Crash drill: the operator SIGKILLed at random moments while TrainingJobs run, plus one
kube-apiserver and one etcd crash. Afterwards every TrainingJob must have exactly one Job and
one ModelVersion, the versions 1..N without gaps or duplicates, and none may be stuck.

    .venv/bin/python bench/reliability/crash.py [--jobs 50] [--kills 10] [--seed 1]

Starts its own local control plane (hack/, kwok nodes, an audit log) and the operator as in
production: leader election on a Lease, `-n` the bench's namespace. The bench plays the
kubelet for the training pods (the operator is told to annotate them
kwok.x-k8s.io/status=custom, so kwok leaves them alone): a pod runs for --train-s seconds,
then its train container ends with a valid termination message. What is drilled is the
operator and the API machinery, not training.

Faults, while a creator thread adds the TrainingJobs --create-every seconds apart (the
default spreads them over the ten kills; each fault records how many were in flight):
  - the operator is SIGKILLed --kills times, each time a random 0.5-6 s after it acquired
    the Lease (so it dies mid-work, not while waiting for the lease), and started again
    after 0-2 s (it then waits for the dead holder's lease to expire, as a new pod would);
  - after a third of the kills, kube-apiserver is SIGKILLed and kept down --down-s seconds;
    after two thirds, etcd (same data directory when it comes back).
Clients (the bench's creator and kubelet, the operator) see connection errors meanwhile and
must retry.

Counts, once every TrainingJob is terminal (or --settle-timeout passed): phases; Jobs per
TrainingJob (listed) and Job creations the API server answered 201 (audit log; the operator
applies Jobs with server-side apply, so a creation is a patch answered 201, a re-apply 200);
ModelVersions per TrainingJob and their versions; training pods per TrainingJob; the time
from the last fault until the last TrainingJob finished. Nothing is timed as pass/fail:
`ok` is the invariants only.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import IO, Any

from kubernetes import config

from perennial_hack.cluster.control_plane import Cluster
from perennial_hack.local_runtime.api import Api
from perennial_hack.local_runtime.claims import claim_bound, ensure_claim
from perennial_hack.local_runtime.volumes import Layout
from perennial_operator.api.group import API_VERSION, LABEL_TRAININGJOB_UID
from perennial_operator.config import DEFAULT_ARTIFACT_PVC
from perennial_operator.k8s.kube import Kube, now_iso

NAMESPACE = "drill"
MODEL = "drill"
LEAVE_TO_BENCH = {"kwok.x-k8s.io/status": "custom"}
POLICY = {
    "apiVersion": "audit.k8s.io/v1",
    "kind": "Policy",
    "omitStages": ["RequestReceived"],
    "rules": [{"level": "Metadata", "resources": [{"group": "batch", "resources": ["jobs"]}]},
              {"level": "None"}],
}  # fmt: skip
RESULT = {
    "outcome": "Succeeded",
    "metrics": {"accuracy": 0.96},
    "dataset": {"uri": "builtin://iris", "sha256": "ab" * 32, "rows": 150},
    "artifact": {"format": "onnx", "sha256": "cd" * 32},
    "algorithm": "logistic_regression",
    "hyperparameters": {"C": 1.0},
    "signature": {
        "inputs": [{"name": "sepal length (cm)", "datatype": "FP64"}],
        "outputs": [{"name": "label", "datatype": "INT64"}],
    },
}
TERMINAL = ("Succeeded", "Failed")


def trainingjob(name: str) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "TrainingJob",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "model": MODEL,
            "task": "classification",
            "algorithm": "logistic_regression",
            "dataset": {"uri": "builtin://iris", "target": "target"},
            "resources": {"cpu": "100m", "memory": "128Mi"},
        },
    }


def container(name: str, state: dict[str, Any], ready: bool = False) -> dict[str, Any]:
    return {"name": name, "image": "perennial/runtime:bench", "imageID": "", "ready": ready,
            "restartCount": 0, "state": state}  # fmt: skip


def done(name: str, message: str) -> dict[str, Any]:
    stamp = now_iso()
    return container(name, {"terminated": {"exitCode": 0, "reason": "Completed",
                                           "message": message, "startedAt": stamp,
                                           "finishedAt": stamp}})  # fmt: skip


class Kubelet:
    """Runs the drill's training pods on paper: Running at once, Succeeded after train_s
    with RESULT as the train container's termination message. API errors (the server is
    down) are counted and retried on the next pass."""

    def __init__(self, kube: Kube, train_s: float) -> None:
        self.kube, self.train_s = kube, train_s
        self.started: dict[str, float] = {}
        self.finished: set[str] = set()
        self.errors = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.wait(0.3):
            try:
                self._pass()
            except Exception:  # noqa: BLE001 - the API server may be down: next pass
                self.errors += 1

    def _pass(self) -> None:
        for pod in self.kube.list("v1", "Pod", NAMESPACE, LABEL_TRAININGJOB_UID):
            meta, status = pod["metadata"], pod.get("status") or {}
            uid, name = meta["uid"], meta["name"]
            if uid in self.finished or status.get("phase") in TERMINAL:
                continue
            if not pod["spec"].get("nodeName"):
                continue
            if uid not in self.started:
                self.kube.patch_status("v1", "Pod", NAMESPACE, name, {
                    "phase": "Running", "startTime": now_iso(),
                    "initContainerStatuses": [done("validate", "")],
                    "containerStatuses": [container("train", {"running": {
                        "startedAt": now_iso()}}, ready=True)],
                })  # fmt: skip
                self.started[uid] = time.monotonic()
            elif time.monotonic() - self.started[uid] >= self.train_s:
                self.kube.patch_status("v1", "Pod", NAMESPACE, name, {
                    "phase": "Succeeded",
                    "initContainerStatuses": [done("validate", "")],
                    "containerStatuses": [done("train", json.dumps(RESULT))],
                })  # fmt: skip
                self.finished.add(uid)


class Operator:
    """The operator process, restarted after each kill; one log for all its lives."""

    def __init__(self, kubeconfig: str, log: Path) -> None:
        self.kubeconfig, self.log_path = kubeconfig, log
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] = log.open("ab")

    def start(self) -> int:
        self._log.flush()
        offset = self.log_path.stat().st_size
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "perennial_operator", "-n", NAMESPACE,
             "--lease-namespace=default", "--verbose"],
            env={**os.environ, "KUBECONFIG": self.kubeconfig, "PERENNIAL_METRICS_PORT": "0",
                 "PERENNIAL_POD_ANNOTATIONS": json.dumps(LEAVE_TO_BENCH)},
            stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        return offset

    def wait_leading(self, offset: int, timeout: float) -> float:
        """Seconds until this life logged that it acquired the Lease."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            with self.log_path.open("rb") as log:
                log.seek(offset)
                if b"acquired lease" in log.read():
                    return time.monotonic() - started
            time.sleep(0.2)
        raise RuntimeError(f"the operator did not acquire the lease in {timeout} s")

    def kill(self) -> None:
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()


def create_all(kube: Kube, n: int, every: float, errors: list[str]) -> None:
    """Create n TrainingJobs; retry through outages (a 409 after a lost answer: created)."""
    for i in range(n):
        while True:
            try:
                kube.create(trainingjob(f"tj-{i:03d}"))
                break
            except Exception as err:  # noqa: BLE001 - down, or created before a lost reply
                if "AlreadyExists" in str(err) or "409" in str(err):
                    break
                errors.append(type(err).__name__)
                time.sleep(0.5)
        time.sleep(every)


def in_flight(kube: Kube) -> int:
    """TrainingJobs created and not yet terminal (what a kill interrupts)."""
    tjs = kube.list(API_VERSION, "TrainingJob", NAMESPACE)
    return sum((t.get("status") or {}).get("phase") not in TERMINAL for t in tjs)


def audit_job_writes(path: Path) -> dict[str, collections.Counter[int]]:
    """Job name -> response codes of the writes (create, or the operator's server-side
    apply: a patch) the API server answered; 201 is an object created."""
    codes: dict[str, collections.Counter[int]] = collections.defaultdict(collections.Counter)
    with path.open() as lines:
        for line in lines:
            entry = json.loads(line)
            ref = entry.get("objectRef") or {}
            if entry.get("verb") in ("create", "patch") and ref.get("resource") == "jobs":
                name = ref.get("name") or "?"
                codes[name][int((entry.get("responseStatus") or {}).get("code", 0))] += 1
    return codes


def counts(kube: Kube, audit: Path, n: int) -> dict[str, Any]:
    tjs = kube.list(API_VERSION, "TrainingJob", NAMESPACE)
    by_uid = {t["metadata"]["uid"]: t["metadata"]["name"] for t in tjs}
    jobs: collections.Counter[str] = collections.Counter()
    for job in kube.list("batch/v1", "Job", NAMESPACE):
        jobs[by_uid.get(job["metadata"]["labels"].get(LABEL_TRAININGJOB_UID, ""), "?")] += 1
    pods: collections.Counter[str] = collections.Counter()
    for pod in kube.list("v1", "Pod", NAMESPACE, LABEL_TRAININGJOB_UID):
        pods[by_uid.get(pod["metadata"]["labels"][LABEL_TRAININGJOB_UID], "?")] += 1
    mvs = kube.list(API_VERSION, "ModelVersion", NAMESPACE)
    versions = sorted(int(m["spec"]["version"]) for m in mvs)
    per_tj = collections.Counter(m["spec"]["source"]["trainingJob"] for m in mvs)
    creates = audit_job_writes(audit)
    accepted = collections.Counter({name: c[201] for name, c in creates.items()})
    phases = collections.Counter((t.get("status") or {}).get("phase", "-") for t in tjs)
    result = {
        "trainingjobs": len(tjs),
        "phases": dict(phases),
        "jobs_per_trainingjob": dict(collections.Counter(jobs[t] for t in by_uid.values())),
        "job_creations_per_job": dict(collections.Counter(accepted.values())),
        "job_writes_to_existing_200": sum(c[200] for c in creates.values()),
        "job_creates_refused_409": sum(c[409] for c in creates.values()),
        "modelversions": len(mvs),
        "modelversions_per_trainingjob": dict(
            collections.Counter(per_tj[t] for t in by_uid.values())
        ),
        "versions_are_1_to_n": versions == list(range(1, n + 1)),
        "duplicate_versions": len(versions) - len(set(versions)),
        "pods_per_trainingjob": dict(collections.Counter(pods[t] for t in by_uid.values())),
        "stuck": sorted(t["metadata"]["name"] for t in tjs
                        if (t.get("status") or {}).get("phase") not in TERMINAL),
    }  # fmt: skip
    result["ok"] = (
        len(tjs) == n
        and phases.get("Succeeded") == n
        and set(jobs[t] for t in by_uid.values()) == {1}
        and set(accepted.values()) == {1}
        and len(accepted) == n
        and set(per_tj[t] for t in by_uid.values()) == {1}
        and result["versions_are_1_to_n"]
    )
    return result


def drill(cluster: Cluster, audit: Path, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    rng = random.Random(args.seed)
    kubeconfig = str(cluster.kubeconfig)
    kubectl = [str(cluster.bin_dir / "kubectl"), f"--kubeconfig={kubeconfig}"]
    subprocess.run([*kubectl, "apply", "--server-side", "-f", str(Path(__file__).parents[2] /
                    "crds")], check=True, capture_output=True)  # fmt: skip
    subprocess.run([*kubectl, "create", "ns", NAMESPACE], check=True, capture_output=True)
    api = Api(kubeconfig)
    ensure_claim(api, Layout(workdir / "state"), NAMESPACE, DEFAULT_ARTIFACT_PVC)
    deadline = time.monotonic() + 60
    while not claim_bound(api, NAMESPACE, DEFAULT_ARTIFACT_PVC) and time.monotonic() < deadline:
        time.sleep(0.5)
    kube = Kube(config.new_client_from_config(config_file=kubeconfig))
    kubelet = Kubelet(kube, args.train_s)
    kubelet.thread.start()
    operator = Operator(kubeconfig, workdir / "operator.log")
    create_errors: list[str] = []
    creator = threading.Thread(
        target=create_all, args=(kube, args.jobs, args.create_every, create_errors), daemon=True
    )
    faults: list[dict[str, Any]] = []
    started = time.monotonic()
    try:
        offset = operator.start()
        operator.wait_leading(offset, 120)
        creator.start()
        for k in range(args.kills):
            time.sleep(rng.uniform(0.5, 6.0))
            operator.kill()
            faults.append({"at_s": round(time.monotonic() - started, 1), "fault": "operator",
                           "trainingjobs_in_flight": in_flight(kube)})  # fmt: skip
            for component, when in (("kube-apiserver", args.kills // 3),
                                    ("etcd", 2 * args.kills // 3)):  # fmt: skip
                if k == when:
                    at = round(time.monotonic() - started, 1)
                    back = cluster.crash(component, args.down_s)
                    faults.append({"at_s": at, "fault": component, "back_after_s": round(back, 1)})
            time.sleep(rng.uniform(0.0, 2.0))
            offset = operator.start()
            if k < args.kills - 1:
                operator.wait_leading(offset, 120)
        last_fault = time.monotonic()
        creator.join()
        settle_deadline = time.monotonic() + args.settle_timeout
        while time.monotonic() < settle_deadline:
            tjs = kube.list(API_VERSION, "TrainingJob", NAMESPACE)
            if len(tjs) == args.jobs and all(
                (t.get("status") or {}).get("phase") in TERMINAL for t in tjs
            ):
                break
            time.sleep(1)
        converged = time.monotonic() - last_fault
        time.sleep(3)  # the batched audit backend flushes every second or so
        result = counts(kube, audit, args.jobs)
        result |= {
            "faults": faults,
            "operator_kills": sum(f["fault"] == "operator" for f in faults),
            "seconds_from_last_fault_to_all_terminal": round(converged, 1),
            "wall_s": round(time.monotonic() - started, 1),
            "bench_client_errors": {"creator": len(create_errors), "kubelet": kubelet.errors},
        }
        return result
    finally:
        kubelet.stop.set()
        operator.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=50)
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--train-s", type=float, default=3.0)
    parser.add_argument("--create-every", type=float, default=4.5)
    parser.add_argument("--down-s", type=float, default=8.0)
    parser.add_argument("--settle-timeout", type=float, default=600.0)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench-crash-"))
    audit = workdir / "audit.log"
    policy = workdir / "audit-policy.json"
    policy.write_text(json.dumps(POLICY))
    extra = {
        "kube-apiserver": [
            f"--audit-policy-file={policy}",
            f"--audit-log-path={audit}",
            "--audit-log-format=json",
            "--audit-log-mode=blocking",  # a SIGKILLed server loses no batch
            "--audit-log-maxsize=0",
        ]
    }
    with Cluster(f"bench-crash-{os.getpid()}", tie_to_parent=True, extra_args=extra) as cluster:
        result = drill(cluster, audit, args, workdir)
    print(f"(operator log, audit log and control-plane logs in {workdir}, {cluster.run_dir})")
    print(json.dumps(result, indent=2))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
