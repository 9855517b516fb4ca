"""The operator at scale: a burst of TrainingJobs vs the raw client, API requests, memory.

    .venv/bin/python bench/operator/scale.py [--sizes 100,1000,5000] [--memory-objects 10000]

Starts its own local control plane (hack/) with an audit log (Metadata level, batched), and
the operator as in production: its ServiceAccount's token and the RBAC of manifests/ (a
namespaced install, bound in the bench's namespaces), leader election on, `-n` those
namespaces. Only the operator's requests are audited (the log costs the API server CPU per
request). `--operator-as admin`: the bench's own credentials, every request audited. Per N:

  raw       the bench's client creates N Jobs (the operator's own Job manifests, built by
            desired/trainingjob.py) back to back; time until a watch has seen all N
  alone     the same client creates N TrainingJobs in a namespace no operator watches: what
            the custom resource costs by itself (reported, not part of the ratio)
  operator  the same client creates N TrainingJobs back to back; time until a watch has seen
            all N Jobs the operator made (each also needs a ConfigMap and a status write)
  raw-after the raw client again, once the operator's burst is deleted
  ratio     operator / the mean of raw and raw-after, side by side in the same run: this
            machine's speed drifts within minutes by as much as the distance to 3x, and the
            two raw runs bracket the operator's (`ratio_to_raw_before`/`_after` too)
  requests  the operator's API requests per TrainingJob by verb and resource, from the audit
            log (its user agents: kopf's and the Kubernetes client's), from the first create
            until every Job exists plus --settle seconds

Each phase starts once the cluster is quiet again (under 1.5 times the CPU the idle cluster
and operator use, measured at the start; at least 0.5 s in 5 s), and a measured phase's Jobs
and pods are deleted after it (its TrainingJobs too): the pods never run (no
volume behind the artifact claim) and the scheduler's retries of thousands of pending pods
are not charged to the next phase. With the Job controller (the default), each Job's pod
comes seconds after its Job: within the operator's longer time, mostly after the raw
client's, so the operator column also holds the pods' creation and scheduling and its status
writes about them. --no-pods turns the Job controller off: both columns then time making the
Jobs and nothing else.

Then --memory-objects: as many TrainingJobs as the last burst had (each with its Job and a
pending pod), then ModelVersions until that many objects of our kinds exist; the operator's
RSS once it is quiet again (`rss_full_mb`), its highest RSS from the first create until then
(`rss_peak_mb`, sampled twice a second), its requests per ModelVersion, and its RSS after
every one of them is deleted (vs. idle before the first burst); --later N: the RSS once a
minute N more times after that. At each of those moments and after each burst
(`memory_*`, `operator_memory`): where the operator's RSS lies (glibc's main heap, its
threads' arenas, the other anonymous mappings, and the rest: code and libraries) and its
TCP connections (open, and closed by the server but not yet by it). The machine may be
shared: the load average is printed with every figure.
--heap DIR: what the operator holds at those three moments (tracemalloc, bench/operator/heap.py).
--pprof DIR: where the kube-apiserver spends its CPU during each phase (its CPU profiles).
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import urllib3
from kubernetes import client, config, watch

from perennial_hack.cluster import process
from perennial_hack.cluster.control_plane import Cluster
from perennial_hack.images.spec import allocator_env
from perennial_operator.api.group import API_VERSION, GROUP, VERSION
from perennial_operator.config import OperatorConfig
from perennial_operator.desired.placement import NO_POOL
from perennial_operator.desired.trainingjob import trainingjob_children
from perennial_operator.k8s.kube import Kube

REPO = Path(__file__).resolve().parents[2]
BENCH_AGENT = "perennial-bench"
sys.path.insert(0, str(REPO / "tests"))
import heap  # noqa: E402  (bench/operator/heap.py, beside this script: where glibc's memory lies)

from support import operator_rbac  # noqa: E402  (the tests' RBAC install, not a package)


def audit_policy(operator_as: str) -> dict[str, Any]:
    """Every request (admin: the operator shares the bench's user; its user agents tell it
    apart), or only the operator's ServiceAccount's: the log costs the API server CPU per
    request, which should not weigh on the raw client's Jobs."""
    rules: list[dict[str, Any]] = [{"level": "Metadata"}]
    if operator_as == "serviceaccount":
        rules = [{"level": "Metadata", "users": [operator_rbac.USER]}, {"level": "None"}]
    return {
        "apiVersion": "audit.k8s.io/v1",
        "kind": "Policy",
        "omitStages": ["RequestReceived"],
        "rules": rules,
    }


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load {one:.2f} {five:.2f} {fifteen:.2f}"


def rss_mb(pid: int) -> float:
    return process.rss_kib(pid) / 1024


MAPPING = re.compile(r"^[0-9a-f]+-[0-9a-f]+ ")  # a mapping's first line in smaps
TCP_STATES = {"01": "established", "08": "close_wait"}  # /proc/net/tcp's st column


def tcp_connections(pid: int) -> dict[str, int]:
    """The process's TCP connections, open ones and those the server closed but the process
    has not (CLOSE_WAIT: a pooled connection the server dropped while idle; its objects
    stay until it is next taken, which measured at no RSS: docs/operator.md). For the
    operator: its API connections, watches and pools."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:  # closed since listed
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    counts = dict.fromkeys(TCP_STATES.values(), 0)
    for table in ("tcp", "tcp6"):  # the network namespace's sockets: keep the process's
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] in TCP_STATES and fields[9] in inodes:
                counts[TCP_STATES[fields[3]]] += 1
    return counts


def resident_by_region(pid: int) -> dict[str, float]:
    """The process's resident memory (MB) by where it lies (/proc/PID/smaps): glibc's main
    heap, its threads' arenas, the other anonymous read-write mappings (blocks mmapped on
    their own, thread stacks), and the rest (code, libraries, read-only data)."""
    kib = dict.fromkeys(("heap", "arena", "mmap", "other"), 0)
    kind: str | None = None
    try:
        lines = Path(f"/proc/{pid}/smaps").read_text().splitlines()
    except OSError:  # the process has ended
        return {}
    for line in lines:
        if MAPPING.match(line):
            kind = heap.region_kind(line)[2] or "other"
        elif line.startswith("Rss:") and kind is not None:
            kib[kind] += int(line.split()[1])
    return {k: round(v / 1024, 1) for k, v in kib.items()}


def memory_now(pid: int) -> dict[str, Any]:
    """What the operator holds now beyond its RSS: where, and its TCP connections."""
    return {"resident_mb": resident_by_region(pid), "connections": tcp_connections(pid)}


def trainingjob(name: str, namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "TrainingJob",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "model": "burst",
            "task": "classification",
            "algorithm": "svm",
            "dataset": {"uri": "builtin://iris", "target": "target"},
            "resources": {"cpu": "100m", "memory": "128Mi"},
        },
    }


def raw_job(name: str, namespace: str, cfg: OperatorConfig) -> dict[str, Any]:
    """The Job the operator would make for this TrainingJob, without the owner (there is
    none: garbage collection would delete a Job whose owner does not exist)."""
    tj = trainingjob(name, namespace)
    tj["metadata"]["uid"] = str(uuid.uuid4())
    job = next(c for c in trainingjob_children(tj, cfg, NO_POOL) if c["kind"] == "Job")
    job["metadata"].pop("ownerReferences", None)
    return job


def modelversion(name: str, namespace: str, version: int) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "ModelVersion",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "model": "filler",
            "version": version,
            "stage": "None",
            # Never served: any well-formed digest (the CRD requires one).
            "artifact": {
                "uri": f"pvc://perennial-artifacts/filler/{version}",
                "format": "onnx",
                "sha256": f"{version:064x}",
            },
        },
    }


class JobCounter:
    """Counts the Jobs of a namespace with one watch (polling lists would load the server)."""

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self.batch = client.BatchV1Api(api)
        self.namespace = namespace
        self.names: set[str] = set()
        self.done = threading.Event()
        self.target = 0
        self._watch = watch.Watch()
        listed = self.batch.list_namespaced_job(namespace)
        self.names.update(j.metadata.name for j in listed.items)
        self._rv = listed.metadata.resource_version
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        stream = self._watch.stream(
            self.batch.list_namespaced_job,
            self.namespace,
            resource_version=self._rv,
            timeout_seconds=3600,
        )
        try:
            for event in stream:
                if event is None:  # the client yields None for a blank or cut-off line
                    continue
                if event["type"] == "ADDED":
                    self.names.add(event["object"].metadata.name)
                    if self.target and len(self.names) >= self.target:
                        self.done.set()
        except urllib3.exceptions.ProtocolError:
            if not self.done.is_set():  # else: our own stop() cut the stream
                raise

    def wait(self, target: int, timeout: float) -> bool:
        self.target = target
        if len(self.names) >= target:
            self.done.set()
        ok = self.done.wait(timeout)
        self._watch.stop()
        return ok


class ApiServerProfile:
    """The kube-apiserver's CPU profile (its /debug/pprof: main() turns --profiling back on)
    while a phase runs: back-to-back profiles of `seconds` each, saved as
    <folder>/<name>-<i>.pb.gz until the `with` block ends.
    Read with `go tool pprof -top <folder>/<name>-*.pb.gz` (pprof merges them)."""

    def __init__(self, api: client.ApiClient, folder: Path | None, name: str, seconds: int = 10):
        self.api, self.folder, self.name, self.seconds = api, folder, name, seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> ApiServerProfile:
        if self.folder is not None:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self.seconds + 30)

    def _run(self) -> None:
        assert self.folder is not None
        i = 0
        while not self._stop.is_set():
            method, url, headers, body, post = self.api.param_serialize(
                "GET",
                "/debug/pprof/profile",
                query_params=[("seconds", str(self.seconds))],
                auth_settings=["BearerToken"],
            )
            response = self.api.call_api(
                method, url, headers, body, post, _request_timeout=self.seconds + 30
            )
            data = response.read()
            if response.status != 200:  # e.g. 404: the server runs with --profiling=false
                raise RuntimeError(f"pprof: {response.status} {data[:200]!r}")
            (self.folder / f"{self.name}-{i}.pb.gz").write_bytes(data)
            i += 1


def audit_counts(path: Path, start: float, end: float) -> collections.Counter[str]:
    """Requests of the operator's user agents received in [start, end], by verb and resource."""
    counts: collections.Counter[str] = collections.Counter()
    with path.open() as lines:
        for line in lines:
            entry = json.loads(line)
            agent = entry.get("userAgent", "")
            if agent.startswith(BENCH_AGENT) or not (
                agent.startswith("kopf") or agent.startswith("OpenAPI-Generator")
            ):
                continue
            received = entry["requestReceivedTimestamp"].replace("Z", "+00:00")
            stamp = dt.datetime.fromisoformat(received).timestamp()
            if not start <= stamp <= end:
                continue
            ref = entry.get("objectRef") or {}
            resource = ref.get("resource", "?") + (
                f"/{ref['subresource']}" if ref.get("subresource") else ""
            )
            counts[f"{entry['verb']} {resource}"] += 1
    return counts


def cpu(pids: dict[str, int]) -> dict[str, float]:
    return {name: process.cpu_seconds(pid) for name, pid in pids.items()}


def cpu_used(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {name: round(after[name] - before[name], 1) for name in before}


QUIET_FLOOR = 0.5  # CPU seconds in a quiesce window: "quiet" on the machines before 2026-12-07


def cluster_cpu_in(pids: dict[str, int], window: float) -> float:
    """The CPU seconds the cluster and the operator (every process but the bench) use in
    the next `window` seconds."""
    others = {name: pid for name, pid in pids.items() if name != "bench"}
    before = cpu(others)
    time.sleep(window)
    return sum(cpu_used(before, cpu(others)).values())


def idle_noise(pids: dict[str, int], window: float = 5.0, samples: int = 3) -> float:
    """The least CPU seconds the cluster and the operator use in `window` with nothing to do
    (of `samples` windows): the control plane's own upkeep (leases, the controllers' loops,
    kwok's node heartbeats) and the operator's Lease renewals. More on a slower machine: on
    one, 0.7-0.8 s, above QUIET_FLOOR, so that quiesce() never returned."""
    return min(cluster_cpu_in(pids, window) for _ in range(samples))


def quiesce(
    pids: dict[str, int], busy: float, window: float = 5.0, timeout: float = 900.0
) -> float:
    """Wait until the cluster and the operator are quiet (under `busy` CPU seconds, all of
    them together, in `window` seconds), so that a phase does not pay for the one before:
    after the raw Jobs exist, the Job controller still makes their pods (at its client's
    rate limit) and the scheduler tries them, and without this wait that work fell into the
    next phases' time. Returns the seconds waited; raises if the cluster never gets quiet."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if cluster_cpu_in(pids, window) < busy:
            return round(time.monotonic() - started, 1)
    raise RuntimeError(f"the cluster was still busy after {timeout:.0f} s")


def clear(api: client.ApiClient, namespace: str, trainingjobs: bool) -> None:
    """Delete a measured phase's objects: its TrainingJobs (so that the operator does not
    make their Jobs again), Jobs and pods, by collection. Their pods never run (the bench's
    Jobs name a claim with no volume behind it) and the scheduler tries every pending pod
    again on each change in the cluster: left in place, 5,000 of them from the raw phase
    weighed on the TrainingJob phase that followed, and on every later burst."""
    if trainingjobs:
        client.CustomObjectsApi(api).delete_collection_namespaced_custom_object(
            GROUP, VERSION, namespace, "trainingjobs"
        )
    client.BatchV1Api(api).delete_collection_namespaced_job(
        namespace, propagation_policy="Background"
    )
    client.CoreV1Api(api).delete_collection_namespaced_pod(namespace, grace_period_seconds=0)


def raw_phase(
    kube: Kube,
    api: client.ApiClient,
    n: int,
    namespace: str,
    pids: dict[str, int],
    pprof: Path | None,
) -> tuple[float, float, str, dict[str, float]]:
    """The bench's client makes n Jobs directly; the time until a watch has seen them all,
    the time the creates took, the load after, and each process's CPU meanwhile. Its Jobs
    and pods are deleted after."""
    cfg = OperatorConfig.from_env({})
    counter = JobCounter(api, namespace)
    cpu_before = cpu(pids)
    started = time.monotonic()
    with ApiServerProfile(api, pprof, namespace):
        for i in range(n):
            kube.create(raw_job(f"b{i}", namespace, cfg))
        created = time.monotonic() - started
        assert counter.wait(n, 3600), f"{namespace}: {len(counter.names)} of {n} Jobs"
    raw = time.monotonic() - started
    load_raw = load()
    cpu_raw = cpu_used(cpu_before, cpu(pids))
    clear(api, namespace, trainingjobs=False)
    return raw, created, load_raw, cpu_raw


def burst(
    kube: Kube,
    api: client.ApiClient,
    n: int,
    pids: dict[str, int],
    audit: Path,
    settle: float,
    busy: float,
    pprof: Path | None = None,
) -> dict[str, Any]:
    """raw, alone, operator, then raw again: this machine's speed drifts by as much as the
    distance to the goal within minutes (the same CPU-bound loop took 7.5-9.7 s in eight
    runs within a minute, idle), so the ratio's denominator is the mean of the raw runs
    before and after the operator's, and the ratio to each is reported too."""
    pid = pids["operator"]
    op_ns = f"op-{n}"
    waited = {"raw": quiesce(pids, busy)}
    raw, created, load_raw, cpu_raw = raw_phase(kube, api, n, f"raw-{n}", pids, pprof)

    # The TrainingJobs alone, where no operator watches: what the custom resource itself
    # costs the API server (schema and CEL validation, JSON), next to a Job.
    waited["alone"] = quiesce(pids, busy)
    started = time.monotonic()
    for i in range(n):
        kube.create(trainingjob(f"b{i}", f"alone-{n}"))
    alone = time.monotonic() - started

    waited["operator"] = quiesce(pids, busy)
    counter = JobCounter(api, op_ns)
    wall = time.time()
    cpu_before = cpu(pids)
    started = time.monotonic()
    with ApiServerProfile(api, pprof, f"operator-{n}"):
        for i in range(n):
            kube.create(trainingjob(f"b{i}", op_ns))
        tj_created = time.monotonic() - started
        assert counter.wait(n, 3600), f"operator: {len(counter.names)} of {n} Jobs"
    op = time.monotonic() - started
    load_op = load()
    cpu_op = cpu_used(cpu_before, cpu(pids))
    time.sleep(settle)
    end = time.time()
    time.sleep(3)  # the batched audit backend flushes every second or so
    counts = audit_counts(audit, wall, end)
    per_tj = {k: round(v / n, 2) for k, v in counts.most_common()}
    rss = rss_mb(pid)  # with this burst's TrainingJobs and Jobs
    # Gone before the raw client runs again, as nothing of this burst existed in its first
    # run: thousands of pending pods would have the scheduler busy meanwhile.
    clear(api, op_ns, trainingjobs=True)
    waited["raw_after"] = quiesce(pids, busy)
    raw_after, _, load_raw_after, cpu_raw_after = raw_phase(
        kube, api, n, f"raw-after-{n}", pids, pprof
    )
    raw_mean = (raw + raw_after) / 2
    return {
        "n": n,
        "raw_s": round(raw, 2),
        "raw_create_s": round(created, 2),
        "raw_after_s": round(raw_after, 2),
        "trainingjobs_alone_s": round(alone, 2),
        "operator_s": round(op, 2),
        "trainingjob_create_s": round(tj_created, 2),
        "ratio": round(op / raw_mean, 2),
        "ratio_to_raw_before": round(op / raw, 2),
        "ratio_to_raw_after": round(op / raw_after, 2),
        "requests_per_trainingjob": per_tj,
        "requests_per_trainingjob_total": round(sum(counts.values()) / n, 2),
        "quiet_wait_s": waited,  # before each phase: the one before it still at work
        "load_raw": load_raw,
        "load_operator": load_op,
        "load_raw_after": load_raw_after,
        # CPU seconds each process used while the Jobs were made: where the time goes
        "cpu_s_raw": cpu_raw,
        "cpu_s_operator": cpu_op,
        "cpu_s_raw_after": cpu_raw_after,
        "operator_rss_mb": round(rss, 1),
        "operator_memory": memory_now(pid),
    }


class RssSampler:
    """The operator's highest RSS, sampled twice a second while in the with block."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak = pid, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            self.peak = max(self.peak, rss_mb(self.pid))


def fill_and_drain(
    kube: Kube,
    kubectl: list[str],
    pids: dict[str, int],
    audit: Path,
    pid: int,
    target: int,
    idle: float,
    heap: Path | None,
    busy: float,
    later: int = 0,
    trainingjobs: int = 0,
) -> dict[str, Any]:
    """`trainingjobs` TrainingJobs (each gets its Job and a pending pod), then ModelVersions
    up to `target` objects of our kinds; the RSS with them all, then after they are deleted."""
    # Every namespace the operator watches: the bursts' and op-fill (made at the start).
    namespaces = sorted(
        {*(ns for ns in kube_namespaces(kubectl) if ns.startswith("op-")), "op-fill"}
    )
    trainingjobs = min(trainingjobs, target)
    fillers = target - trainingjobs
    with RssSampler(pid) as sampler:
        tj_started = time.monotonic()
        counter = JobCounter(kube.api, "op-fill")
        for i in range(trainingjobs):
            kube.create(trainingjob(f"filler-{i}", "op-fill"))
        # As in a burst: every Job made before the ModelVersions (their pods and the
        # operator's news of them still come during the ModelVersions' creates, as before).
        assert counter.wait(trainingjobs, 3600), f"fill: {len(counter.names)} Jobs"
        tj_created = time.monotonic() - tj_started
        wall, started = time.time(), time.monotonic()
        for i in range(fillers):
            kube.create(modelversion(f"filler-v{i + 1}", "op-fill", i + 1))
        filled = time.monotonic() - started
        # Until the operator has handled them all: while it is behind, the watch events it
        # has not handled yet are held in its memory too (the peak says how much). Thousands
        # of pending pods keep the scheduler busy: after 10 minutes, measured as it is.
        try:
            settled: float | None = quiesce(pids, busy, timeout=600)
        except RuntimeError:
            settled = None
        end = time.time()
    full = rss_mb(pid)
    memory_full = memory_now(pid)
    load_full = load()
    heap_dump(pid, heap)
    time.sleep(3)  # the batched audit backend flushes every second or so
    counts = audit_counts(audit, wall, end)
    for ns in namespaces:
        for plural in ("trainingjobs", "modelversions"):
            subprocess.run(
                [*kubectl, "delete", plural, "--all", "-n", ns, "--wait=false"],
                check=True,
                capture_output=True,
            )
    deadline = time.monotonic() + 1800
    while time.monotonic() < deadline:
        # Their Jobs, pods and ConfigMaps too: the garbage collector deletes those after the
        # TrainingJobs are gone, and the operator sees each go (its watches, its views).
        left = sum(
            len(kube.list(api_version, kind, ns))
            for ns in namespaces
            for api_version, kind in (
                (API_VERSION, "TrainingJob"),
                (API_VERSION, "ModelVersion"),
                ("batch/v1", "Job"),
                ("v1", "Pod"),
            )
        )
        if left == 0:
            break
        time.sleep(5)
    time.sleep(30)
    after = rss_mb(pid)
    memory_after = memory_now(pid)
    heap_dump(pid, heap)
    result = {
        "objects": target,
        "trainingjobs_created_s": round(tj_created, 1),
        "modelversions_created_s": round(filled, 1),
        "settled_s": settled,  # after the creates, until quiet (None: not within 10 min)
        "requests_per_modelversion": {
            k: round(v / max(1, fillers), 2) for k, v in counts.most_common()
        },
        "rss_peak_mb": round(sampler.peak, 1),  # while creating them and until quiet
        "rss_full_mb": round(full, 1),  # quiet, with all of them
        "memory_full": memory_full,  # where its RSS lies, its TCP connections
        "load_full": load_full,
        "rss_after_delete_mb": round(after, 1),
        "after_vs_idle": round(after / idle, 2),
        "memory_after": memory_after,
        "load_after": load(),
    }
    if later:
        # Does the RSS come down while idle (the memory loop runs every minute)?
        samples, memory = [], []
        for _ in range(later):
            time.sleep(60)
            samples.append(round(rss_mb(pid), 1))
            memory.append(memory_now(pid))
        result["rss_later_mb"] = samples
        result["memory_later"] = memory
        result["later_vs_idle"] = round(samples[-1] / idle, 2)
        heap_dump(pid, heap)  # and what is still held then
    return result


def operator_cmd(heap: Path | None) -> list[str]:
    if heap is None:
        return [sys.executable, "-m", "perennial_operator"]
    return [sys.executable, str(REPO / "bench" / "operator" / "heap.py"), str(heap)]


def heap_dump(pid: int, heap: Path | None) -> None:
    """With --heap: the operator writes what is alive now (bench/operator/heap.py)."""
    if heap is not None:
        done = len(list(heap.glob("heap-*.json")))
        os.kill(pid, signal.SIGUSR1)
        deadline = time.monotonic() + 600  # a walk of a large heap takes a while
        while len(list(heap.glob("heap-*.json"))) == done and time.monotonic() < deadline:
            time.sleep(2)
        time.sleep(5)


def kube_namespaces(kubectl: list[str]) -> list[str]:
    done = subprocess.run(
        [*kubectl, "get", "ns", "-o", "jsonpath={.items[*].metadata.name}"],
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout.split()


def run(cluster: Cluster, audit: Path, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    kubeconfig = str(cluster.kubeconfig)
    kubectl = [str(cluster.bin_dir / "kubectl"), f"--kubeconfig={kubeconfig}"]
    subprocess.run(
        [*kubectl, "apply", "--server-side", "-f", str(REPO / "crds")],
        check=True,
        capture_output=True,
    )
    for n in args.sizes:
        for prefix in ("raw", "alone", "op", "raw-after"):
            subprocess.run([*kubectl, "create", "ns", f"{prefix}-{n}"], check=True)
    subprocess.run([*kubectl, "create", "ns", "op-fill"], check=True)
    api = config.new_client_from_config(config_file=kubeconfig)
    api.user_agent = BENCH_AGENT
    kube = Kube(api)
    watched = [arg for n in args.sizes for arg in ("-n", f"op-{n}")] + ["-n", "op-fill"]
    operator_kubeconfig, lease_namespace = kubeconfig, "default"
    if args.operator_as == "serviceaccount":  # as installed: its token, its RBAC

        def kubectl_run(*more: str, stdin: str | None = None, check: bool = True) -> Any:
            return subprocess.run(
                [*kubectl, *more], input=stdin, text=True, capture_output=True, check=check
            )

        operator_kubeconfig = str(
            operator_rbac.install(kubectl_run, cluster.kubeconfig, workdir / "operator.kubeconfig")
        )
        for namespace in watched[1::2]:
            operator_rbac.bind(kubectl_run, namespace)
        kubectl_run("apply", "-f", str(REPO / "manifests" / "leader-election.yaml"))
        lease_namespace = operator_rbac.SA_NAMESPACE
    log = (workdir / "operator.log").open("ab")
    operator = subprocess.Popen(
        [*operator_cmd(args.heap), *watched, f"--lease-namespace={lease_namespace}"],
        env={
            **os.environ,
            **allocator_env("operator"),  # as its image runs it (operator/Dockerfile)
            "KUBECONFIG": operator_kubeconfig,
            "PERENNIAL_METRICS_PORT": "0",
        },
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        time.sleep(20)  # campaign, kopf's start, the first (empty) lists
        idle = rss_mb(operator.pid)
        memory_idle = memory_now(operator.pid)
        heap_dump(operator.pid, args.heap)
        pids = {
            "operator": operator.pid,
            "bench": os.getpid(),
            **{name: c["pid"] for name, c in cluster.status()["components"].items()},
        }
        # "Quiet" (quiesce) is measured against this machine's idle cluster, not a constant.
        busy = max(QUIET_FLOOR, 1.5 * idle_noise(pids))
        results: dict[str, Any] = {
            "rss_idle_mb": round(idle, 1),
            "memory_idle": memory_idle,
            "load_idle": load(),
            "quiet_below_cpu_s": round(busy, 2),
        }
        results["bursts"] = []
        for n in args.sizes:
            result = burst(kube, api, n, pids, audit, args.settle, busy, args.pprof)
            print(json.dumps(result), flush=True)
            results["bursts"].append(result)
        if args.memory_objects:
            results["memory"] = fill_and_drain(
                kube,
                kubectl,
                pids,
                audit,
                operator.pid,
                args.memory_objects,
                idle,
                args.heap,
                busy,
                args.later,
                trainingjobs=args.sizes[-1] if args.sizes else 0,
            )
            print(json.dumps(results["memory"]), flush=True)
        return results
    finally:
        process.stop([operator.pid], grace_s=30)  # SIGTERM, then SIGKILL
        operator.wait()
        log.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes", type=lambda s: [int(x) for x in s.split(",")], default=[100, 1000, 5000]
    )
    parser.add_argument("--memory-objects", type=int, default=10000, help="0: skip")
    parser.add_argument("--settle", type=float, default=15.0)
    parser.add_argument(
        "--later",
        type=int,
        default=0,
        help="after the deletes, the RSS once a minute this many more times (idle)",
    )
    parser.add_argument(
        "--heap",
        type=Path,
        help="run the operator with tracemalloc; dump what is alive when idle, full and "
        "after the deletes into this folder (bench/operator/heap.py; RSS not comparable)",
    )
    parser.add_argument(
        "--pprof",
        type=Path,
        help="save the kube-apiserver's CPU profiles during each raw and operator phase into "
        "this folder (go tool pprof -top DIR/operator-1000-*.pb.gz)",
    )
    parser.add_argument(
        "--no-pods",
        action="store_true",
        help="turn the Job controller off: no pods, so what is timed is making the Jobs alone",
    )
    parser.add_argument(
        "--operator-as",
        choices=("serviceaccount", "admin"),
        default="serviceaccount",
        help="serviceaccount (default): the operator authenticates with its ServiceAccount's "
        "token under manifests/ RBAC, as installed, and only its requests are audited; admin: "
        "with the bench's client certificate, and every request is audited (before 2026-12-05)",
    )
    args = parser.parse_args()
    # SIGTERM as Ctrl-C: the finally blocks stop the operator and the control plane. SIGINT
    # too, even when it came ignored: a shell starts a background job (`scale.py &`) with
    # SIGINT ignored, and `kill -INT` then did nothing.
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, signal.default_int_handler)
    workdir = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    audit = workdir / "audit.log"
    policy = workdir / "audit-policy.json"
    policy.write_text(json.dumps(audit_policy(args.operator_as)))
    extra = {
        "kube-apiserver": [
            f"--audit-policy-file={policy}",
            f"--audit-log-path={audit}",
            "--audit-log-format=json",
            "--audit-log-mode=batch",
            "--audit-log-maxsize=0",
            # hack/ turns profiling off (its default exposes /debug/pprof); the last flag wins
            *(["--profiling=true"] if args.pprof else []),
        ],
        # With the Job controller, each Job's pod comes seconds after the Job: the raw
        # client's clock has mostly stopped by then, the operator's (3-5x longer) has not,
        # so its column also holds the Job controller's and the scheduler's work for its
        # pods and the operator's status writes about them. --no-pods: neither column has
        # pods (the last --controllers flag wins).
        **({"kube-controller-manager": ["--controllers=*,-nodeipam,-job"]} if args.no_pods else {}),
    }
    with Cluster(f"bench-scale-{os.getpid()}", tie_to_parent=True, extra_args=extra) as cluster:
        results = run(cluster, audit, args, workdir)
    print(f"(operator log and audit log in {workdir})")
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
