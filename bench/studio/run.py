"""Perennial Studio at scale: 1,000 ModelVersions, 1,000 TrainingJobs, 50 InferenceServices
(and a few RetrainPolicies, Events and a ComputePool) on a local control plane of its own.

For each page: the server-side render time (the Server-Timing header, median of N full
renders) beside the time of the one LIST a list-per-page-view dashboard would have to make
before rendering anything (the peer, run side by side against the same API server); the
Studio's RSS; and the API server's own request counters (apiserver_request_total) by verb
over the page views, against a quiet interval of the same length (the controllers and kwok
make requests of their own).

    .venv/bin/python bench/studio/run.py [--views 30]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from perennial_hack.cluster.control_plane import Cluster
from perennial_studio.kube import Kube, load_configuration

REPO = Path(__file__).resolve().parents[2]
NS = "bench"
MODELS, VERSIONS, SERVICES, POLICIES = 20, 50, 50, 10
G = "perennial.dev/v1alpha1"


def t(day: int, minute: int = 0) -> str:
    return f"2026-01-{1 + day % 28:02d}T{minute // 60 % 24:02d}:{minute % 60:02d}:00Z"


def world() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(objects, status patches): the objects as users and the operator would leave them."""
    objects, statuses = [], []
    for m in range(MODELS):
        model = f"model-{m:02d}"
        for v in range(1, VERSIONS + 1):
            job, mv = f"{model}-{v}", f"{model}-v{v}"
            metric = round(0.8 + 0.15 * v / VERSIONS, 4)
            stage = (
                "Production" if v == VERSIONS - 1 else "Archived" if v < VERSIONS - 1 else "Staging"
            )
            objects.append(
                {
                    "apiVersion": G,
                    "kind": "TrainingJob",
                    "metadata": {"name": job, "namespace": NS},
                    "spec": {
                        "model": model,
                        "task": "classification",
                        "dataset": {"uri": "s3://data/x.csv", "target": "y"},
                        "validation": {"minRows": 100},
                    },
                }
            )
            statuses.append(
                (
                    "TrainingJob",
                    "trainingjobs",
                    job,
                    {
                        "phase": "Succeeded",
                        "modelVersion": mv,
                        "metrics": {"roc_auc": metric},
                        "baselineMetrics": {"roc_auc": metric - 0.01},
                        "primaryMetric": f"roc_auc={metric}",
                        "startTime": t(v, m),
                        "completionTime": t(v, m + 5),
                        "algorithm": "svm",
                        "dataset": {
                            "uri": "s3://data/x.csv",
                            "sha256": f"{v:064d}",
                            "rows": 1000 + v,
                        },
                    },
                )
            )
            objects.append(
                {
                    "apiVersion": G,
                    "kind": "ModelVersion",
                    "metadata": {
                        "name": mv,
                        "namespace": NS,
                        "labels": {"perennial.dev/model": model},
                    },
                    "spec": {
                        "model": model,
                        "version": v,
                        "stage": stage,
                        "artifact": {"uri": f"pvc://a/{mv}", "sha256": "a" * 64},
                        "metrics": {"roc_auc": metric, "accuracy": metric - 0.05},
                        "source": {
                            "trainingJob": job,
                            "algorithm": "svm",
                            "dataset": {
                                "uri": "s3://data/x.csv",
                                "sha256": f"{v:064d}",
                                "rows": 1000 + v,
                            },
                            "hyperparameters": {"C": v},
                        },
                    },
                }
            )
            statuses.append(
                (
                    "ModelVersion",
                    "modelversions",
                    mv,
                    {"phase": "Ready", "primaryMetric": f"roc_auc={metric}"},
                )
            )
    for s in range(SERVICES):
        model, name = f"model-{s % MODELS:02d}", f"svc-{s:02d}"
        objects.append(
            {
                "apiVersion": G,
                "kind": "InferenceService",
                "metadata": {"name": name, "namespace": NS},
                "spec": {
                    "model": {"name": model, "stage": "Production"},
                    "replicas": 2,
                    "rollout": {"strategy": "Canary", "steps": [10, 50, 100]},
                },
            }
        )
        features = {f"f{i}": round(0.01 * i, 3) for i in range(30)}
        statuses.append(
            (
                "InferenceService",
                "inferenceservices",
                name,
                {
                    "phase": "Progressing",
                    "currentModelVersion": f"{model}-v{VERSIONS - 1}",
                    "currentVersion": VERSIONS - 1,
                    "replicas": 2,
                    "readyReplicas": 2,
                    "canary": {
                        "version": VERSIONS,
                        "modelVersion": f"{model}-v{VERSIONS}",
                        "weight": 10,
                        "step": 0,
                    },
                    "drift": {
                        "psi": 0.29,
                        "samples": 5000,
                        "features": features,
                        "worst": ["f29"],
                        "time": t(1),
                    },
                },
            )
        )
    for p in range(POLICIES):
        objects.append(
            {
                "apiVersion": G,
                "kind": "RetrainPolicy",
                "metadata": {"name": f"policy-{p:02d}", "namespace": NS},
                "spec": {
                    "inferenceService": f"svc-{p:02d}",
                    "template": {
                        "model": f"model-{p:02d}",
                        "task": "classification",
                        "dataset": {"uri": "s3://data/x.csv", "target": "y"},
                    },
                    "triggers": {"drift": {"psi": 0.2, "minSamples": 500}, "schedule": "0 3 * * 0"},
                },
            }
        )
    objects.append(
        {
            "apiVersion": G,
            "kind": "ComputePool",
            "metadata": {"name": "gpu"},
            "spec": {
                "node": {"cpu": "32", "memory": "256Gi", "gpu": 4},
                "maxNodes": 8,
                "provider": {"kwok": {}},
            },
        }
    )
    return objects, statuses


def events() -> list[dict[str, Any]]:
    out = []
    for m in range(MODELS):
        for v in range(1, VERSIONS + 1):
            out.append(
                {
                    "apiVersion": "v1",
                    "kind": "Event",
                    "metadata": {"generateName": "bench.", "namespace": NS},
                    "involvedObject": {
                        "apiVersion": G,
                        "kind": "ModelVersion",
                        "name": f"model-{m:02d}-v{v}",
                        "namespace": NS,
                    },
                    "reason": "StageChanged",
                    "message": "stage None -> Production",
                    "type": "Normal",
                    "source": {"component": "bench"},
                    "firstTimestamp": t(v, m),
                    "lastTimestamp": t(v, m),
                    "count": 1,
                }
            )
    return out


def create_all(kube: Kube) -> None:
    objects, statuses = world()
    plural = {
        "TrainingJob": "trainingjobs",
        "ModelVersion": "modelversions",
        "InferenceService": "inferenceservices",
        "RetrainPolicy": "retrainpolicies",
    }

    def create(obj: dict[str, Any]) -> None:
        if obj["kind"] == "ComputePool":
            kube.post(f"/apis/{G}/computepools", obj)
        else:
            kube.post(f"/apis/{G}/namespaces/{NS}/{plural[obj['kind']]}", obj)

    def status(item: tuple[str, str, str, dict[str, Any]]) -> None:
        _, res, name, body = item
        kube.merge_patch(f"/apis/{G}/namespaces/{NS}/{res}/{name}/status", {"status": body})

    def event(obj: dict[str, Any]) -> None:
        kube.post(f"/api/v1/namespaces/{NS}/events", obj)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(create, objects))
        list(pool.map(status, statuses))
        list(pool.map(event, events()))


def request_counts(kube: Kube) -> dict[str, float]:
    """apiserver_request_total summed by verb and resource (all clients)."""
    text = kube.text("/metrics", timeout=30.0)
    counts: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "apiserver_request_total":
                labels = sample.labels
                resource = labels.get("resource", "") + (
                    f"/{labels['subresource']}" if labels.get("subresource") else ""
                )
                key = f"{labels.get('verb', '')} {resource or labels.get('path', '-')}"
                counts[key] = counts.get(key, 0.0) + sample.value
    return counts


def delta(after: dict[str, float], before: dict[str, float]) -> dict[str, int]:
    return {
        k: int(after[k] - before.get(k, 0.0))
        for k in sorted(after)
        if after[k] - before.get(k, 0.0)
    }


def lists(counts: dict[str, int]) -> int:
    return sum(n for key, n in counts.items() if key.startswith("LIST "))


def render_ms(url: str) -> tuple[float, float]:
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=30) as resp:
        resp.read()
        timing = resp.headers.get("Server-Timing", "render;dur=nan")
    total = (time.perf_counter() - started) * 1000
    return float(timing.split("dur=")[1]), total


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--views", type=int, default=30, help="renders per page")
    args = parser.parse_args()
    cluster = Cluster(f"bench-studio-{os.getpid()}", tie_to_parent=True, log=lambda m: None)
    cluster.start()
    studio = None
    try:
        subprocess.run(
            [
                str(cluster.bin_dir / "kubectl"),
                f"--kubeconfig={cluster.kubeconfig}",
                "apply",
                "--server-side",
                "-f",
                str(REPO / "crds"),
            ],
            check=True,
            capture_output=True,
        )
        subprocess.run(
            [
                str(cluster.bin_dir / "kubectl"),
                f"--kubeconfig={cluster.kubeconfig}",
                "wait",
                "--for=condition=Established",
                "crd",
                "--all",
            ],
            check=True,
            capture_output=True,
        )
        kube = Kube(load_configuration(str(cluster.kubeconfig)))
        kube.post("/api/v1/namespaces", {"metadata": {"name": NS}})
        started = time.monotonic()
        create_all(kube)
        print(f"created the world in {time.monotonic() - started:.0f}s")
        port = 18000 + os.getpid() % 1000
        log = open(Path(cluster.run_dir) / "studio.log", "ab")  # noqa: SIM115
        studio = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "perennial_studio",
                "--kubeconfig",
                str(cluster.kubeconfig),
                "--port",
                str(port),
                "--scrape-interval",
                "0",
            ],
            stdout=log,
            stderr=log,
        )
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{base}/readyz", timeout=5) as resp:
                    counts = json.loads(resp.read())["objects"]
                    if (
                        counts["ModelVersion"] == MODELS * VERSIONS
                        and counts["TrainingJob"] == MODELS * VERSIONS
                    ):
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, "the Studio did not sync"
            time.sleep(0.5)
        print(f"Studio synced: {counts}")
        pages = {
            "overview": "/",
            "trainingjobs list": "/trainingjobs",
            "model (50 versions)": f"/ns/{NS}/models/model-07",
            "compare": f"/ns/{NS}/models/model-07/compare?a=model-07-v49&b=model-07-v50",
            "trainingjob": f"/ns/{NS}/trainingjobs/model-07-50",
            "inferenceservice": f"/ns/{NS}/inferenceservices/svc-07",
            "retrainpolicy": f"/ns/{NS}/retrainpolicies/policy-07",
            "computepools": "/computepools",
        }
        for path in pages.values():  # warm up: templates compile on first use
            render_ms(base + path)
        view_started = time.monotonic()
        results = {}
        before = request_counts(kube)
        for name, path in pages.items():
            timings = [render_ms(base + path) for _ in range(args.views)]
            results[name] = (
                statistics.median(r for r, _ in timings),
                statistics.median(t_ for _, t_ in timings),
            )
        after = request_counts(kube)
        spent = time.monotonic() - view_started
        quiet_start = request_counts(kube)
        time.sleep(spent)
        quiet_end = request_counts(kube)
        peer = []
        for _ in range(10):
            began = time.perf_counter()
            kube.get(f"/apis/{G}/modelversions")
            peer.append((time.perf_counter() - began) * 1000)
        peer_tj = []
        for _ in range(10):
            began = time.perf_counter()
            kube.get(f"/apis/{G}/trainingjobs")
            peer_tj.append((time.perf_counter() - began) * 1000)
        list_mv, list_tj = statistics.median(peer), statistics.median(peer_tj)
        views = args.views * len(pages)
        print(f"\n{'page':<22}{'render ms (median)':>20}{'HTTP ms':>10}")
        for name, (render, total) in results.items():
            print(f"{name:<22}{render:>20.1f}{total:>10.1f}")
        print(
            f"\npeer: one LIST of the 1,000 ModelVersions {list_mv:.0f} ms, of the 1,000 "
            f"TrainingJobs {list_tj:.0f} ms (median of 10; what a list-per-view page pays "
            "before rendering)"
        )
        print(f"Studio RSS after {views} page views: {rss_mib(studio.pid):.0f} MiB")
        during, quiet = delta(after, before), delta(quiet_end, quiet_start)
        print(f"API requests during {views} page views ({spent:.0f}s): {during}")
        print(f"API requests in a quiet {spent:.0f}s (no page views): {quiet}")
        print(
            f"LIST requests: {lists(during)} during the page views, {lists(quiet)} in the "
            "quiet interval (a WATCH is counted when it ends: none ended in either)"
        )
    finally:
        if studio is not None:
            studio.terminate()
            studio.wait(timeout=15)
        cluster.stop(quiet=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
