"""What the InferenceService integration tests add to the World: a kubelet stand-in for the
serving pods and their HTTP endpoint (the `fake_pods` fixture), the claim they mount, the
operator options that point it at them, and helpers for the service `churn`.

kwok leaves the serving pods alone (kwok.x-k8s.io/status=custom); a small kubelet stand-in
marks each scheduled pod Running and Ready with its own loopback IP (127.77.x.y: all of
127.0.0.0/8 is loopback on Linux). One HTTP server on a free port answers /metrics and
/v2/models/<name>/profile for every such IP; which pod was asked, it learns from the
address the connection came in on. The operator reaches pods through
PERENNIAL_POD_URL_TEMPLATE=http://{ip}:<that port>, so it scrapes each pod at its own IP,
as it would in a cluster. (The endpoints controller refuses loopback addresses and says so in
Warning Events on the Service; the operator never reads Endpoints, so that is only noise.)
"""

from __future__ import annotations

import itertools
import json
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from perennial_hack.local_runtime.claims import claim_manifests, pv_name
from perennial_operator.api.group import API_VERSION, LABEL_COMPUTEPOOL
from perennial_operator.k8s.kube import Kube, now_iso
from support.operator_process import OperatorOptions
from support.world import World, resource

CLAIM = "perennial-artifacts"
LABEL = "perennial.dev/inferenceservice"
_addresses = itertools.count(1)
PROFILE = {
    "features": [
        {
            "name": "age",
            "kind": "numeric",
            "edges": [30.0],
            "proportions": [0.5, 0.5],
            "missing": 0.0,
        }
    ]
}


@dataclass
class Behaviour:
    """What the pods of one model version serve, as their /metrics show it.

    Counters grow as a server's do: every scrape of a pod finds one more batch of `ok` and
    `errors` requests (all faster or all slower than 5 ms, by `latency_s`) answered since the
    last one. So a pod's counters rise with the scrapes, and changing a version's Behaviour
    mid-rollout changes what its pods serve from then on. `startup_errors` are 5xx answers a
    pod has already counted when it is first scraped: a burst before any step's clock."""

    ok: int = 200
    errors: int = 0
    latency_s: float = 0.004
    startup_errors: int = 0


@dataclass
class Served:
    """One pod's counters since it started."""

    ok: int = 0
    errors: int = 0
    fast: int = 0
    slow: int = 0

    def add(self, b: Behaviour) -> None:
        self.ok += b.ok
        self.errors += b.errors
        if b.latency_s > 0.005:
            self.slow += b.ok + b.errors
        else:
            self.fast += b.ok + b.errors

    def metrics(self, model: str, version: int) -> str:
        mv = f'model="{model}",version="{version}"'
        lv = f'{mv},protocol="v2"'
        total = self.ok + self.errors
        return "\n".join(
            [
                "# TYPE perennial_requests counter",
                f'perennial_requests_total{{{lv},code="200"}} {self.ok}',
                f'perennial_requests_total{{{lv},code="500"}} {self.errors}',
                "# TYPE perennial_request_duration_seconds histogram",
                f'perennial_request_duration_seconds_bucket{{{lv},le="0.005"}} {self.fast}',
                f'perennial_request_duration_seconds_bucket{{{lv},le="1.0"}} {total}',
                f'perennial_request_duration_seconds_bucket{{{lv},le="+Inf"}} {total}',
                f"perennial_request_duration_seconds_count{{{lv}}} {total}",
                f"perennial_request_duration_seconds_sum{{{lv}}} {self.fast * 0.004 + self.slow}",
                "# TYPE perennial_feature_bin counter",
                f'perennial_feature_bin_total{{{mv},feature="age",bin="0"}} 75',
                f'perennial_feature_bin_total{{{mv},feature="age",bin="1"}} 25',
                "# TYPE perennial_feedback counter",
                f'perennial_feedback_total{{{mv},outcome="correct"}} 9',
                f'perennial_feedback_total{{{mv},outcome="incorrect"}} 1',
                "",
            ]
        )


class FakePods:
    """The kubelet stand-in and the pods' HTTP endpoint, for one namespace."""

    def __init__(self, kube: Kube, namespace: str) -> None:
        self.kube, self.ns = kube, namespace
        self.versions: dict[str, tuple[str, int]] = {}  # pod IP -> (model, version)
        self.behaviour: dict[int, Behaviour] = {}
        self.served: dict[str, Served] = {}  # pod IP -> its counters
        self.served_lock = threading.Lock()
        self.never_ready: set[int] = set()  # versions whose pods never start
        self.scraped: set[str] = set()
        self.stop = threading.Event()
        self.server = ThreadingHTTPServer(("0.0.0.0", 0), self._handler())
        self.port = self.server.server_address[1]
        self.threads = [
            threading.Thread(target=self.server.serve_forever, daemon=True),
            threading.Thread(target=self._kubelet, daemon=True),
        ]

    def __enter__(self) -> FakePods:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.server.shutdown()
        self.server.server_close()
        for thread in self.threads:
            thread.join(timeout=10)

    def scrape(self, ip: str, model: str, version: int) -> str:
        """The pod's /metrics after one more batch of what its version serves now."""
        behaviour = self.behaviour.get(version, Behaviour())
        with self.served_lock:
            if ip not in self.served:
                burst = behaviour.startup_errors
                self.served[ip] = Served(errors=burst, fast=burst)
            served = self.served[ip]
            served.add(behaviour)
            return served.metrics(model, version)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                ip = self.connection.getsockname()[0]
                model, version = fake.versions.get(ip, ("", 0))
                if self.path == "/metrics" and version:
                    fake.scraped.add(ip)
                    body = fake.scrape(ip, model, version).encode()
                    self._send(200, body, "text/plain; version=0.0.4")
                elif self.path == f"/v2/models/{model}/profile" and version:
                    self._send(200, json.dumps(PROFILE).encode(), "application/json")
                else:
                    self._send(404, b"{}", "application/json")

            def _send(self, code: int, body: bytes, ctype: str) -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: Any) -> None:
                pass

        return Handler

    def _kubelet(self) -> None:
        while not self.stop.wait(0.2):
            try:
                for pod in self.kube.list("v1", "Pod", self.ns, LABEL):
                    started = (pod.get("status") or {}).get("podIP")
                    version = int(pod["metadata"]["labels"]["perennial.dev/model-version"])
                    if (
                        pod["spec"].get("nodeName")
                        and not started
                        and version not in self.never_ready
                    ):
                        self._start(pod)
            except Exception:  # noqa: BLE001 (a namespace being deleted; the loop goes on)
                continue

    def _start(self, pod: dict[str, Any]) -> None:
        n = next(_addresses)
        ip = f"127.77.{n // 250}.{n % 250 + 1}"
        labels = pod["metadata"]["labels"]
        version = int(labels["perennial.dev/model-version"])
        self.versions[ip] = (labels["perennial.dev/model"], version)
        stamp = now_iso()
        conditions = [
            {"type": t, "status": "True", "lastTransitionTime": stamp}
            for t in ("PodScheduled", "Initialized", "ContainersReady", "Ready")
        ]
        container = {
            "name": "server",
            "image": pod["spec"]["containers"][0]["image"],
            "imageID": "",
            "ready": True,
            "started": True,
            "restartCount": 0,
            "state": {"running": {"startedAt": stamp}},
        }
        self.kube.patch_status("v1", "Pod", self.ns, pod["metadata"]["name"], {
            "phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}], "hostIP": "10.0.0.1",
            "startTime": stamp, "conditions": conditions, "containerStatuses": [container],
        })  # fmt: skip


@pytest.fixture
def fake_pods(kube: Kube, namespace: str) -> Iterator[FakePods]:
    with FakePods(kube, namespace) as pods:
        yield pods


@pytest.fixture
def serving_claim(core: client.CoreV1Api, namespace: str, tmp_path: Path) -> Iterator[None]:
    """The artifact claim serving pods mount, bound to a local folder."""
    pv, pvc = claim_manifests(namespace, CLAIM, tmp_path / "claim")
    core.create_persistent_volume(pv)
    core.create_namespaced_persistent_volume_claim(namespace, pvc)
    yield
    core.delete_persistent_volume(pv_name(namespace, CLAIM))


@pytest.fixture
def operator_options(fake_pods: FakePods, serving_claim: None) -> OperatorOptions:
    """Serving pods left to the kubelet stand-in, and reached at its HTTP endpoint."""
    return OperatorOptions(
        pod_annotations={"kwok.x-k8s.io/status": "custom"},
        env={"PERENNIAL_POD_URL_TEMPLATE": f"http://{{ip}}:{fake_pods.port}"},
    )


# The tests' InferenceService is always `churn`, serving model `churn`.


def modelversion(world: World, version: int, stage: str = "None") -> None:
    world.create(resource("ModelVersion", f"churn-v{version}",
                          {"model": "churn", "version": version, "stage": stage,
                           "artifact": {"uri": f"pvc://{CLAIM}/models/churn/v{version}",
                                        "sha256": f"{version:02d}" * 32}}))  # fmt: skip


def service(world: World, model: dict[str, Any], **spec: Any) -> None:
    world.create(
        resource(
            "InferenceService",
            "churn",
            {
                "model": {"name": "churn", **model},
                "resources": {"cpu": "50m", "memory": "64Mi"},
                **spec,
            },
        )
    )


def serving_v1_of_two(world: World, **spec: Any) -> None:
    """ModelVersions churn-v1 and churn-v2, and the service pinned to v1 and Ready on its
    replicas: where a rollout test starts."""
    modelversion(world, 1)
    modelversion(world, 2)
    service(world, {"version": 1}, **spec)
    replicas = int(spec.get("replicas", 1))
    wait_status(world, "v1 Ready", phase="Ready", readyReplicas=replicas)


def pin(world: World, version: int) -> None:
    """Point the service at `version` (spec.model.version), as a user would."""
    patch = {"spec": {"model": {"version": version}}}
    world.kube.patch(API_VERSION, "InferenceService", world.ns, "churn", patch)


def service_status(world: World) -> dict[str, Any]:
    return world.status("InferenceService", "churn")


def wait_status(world: World, message: str, timeout: float = 60.0, **want: Any) -> dict[str, Any]:
    return world.wait_status("InferenceService", "churn", message, timeout, **want)


def condition(world: World, type_: str) -> dict[str, Any]:
    return world.condition("InferenceService", "churn", type_)


def service_events(world: World) -> list[tuple[str, str, str]]:
    return world.events("InferenceService")


def deployment(world: World, track: str) -> dict[str, Any] | None:
    return world.get("Deployment", f"churn-{track}") or None


def kwok_pool(world: World, name: str) -> None:
    """A ComputePool of kwok nodes with one node up from the start (cluster-scoped: the
    caller removes it with `drop_pool`)."""
    world.create(resource("ComputePool", name,
                          {"node": {"cpu": "4", "memory": "16Gi", "gpu": 0},
                           "labels": {"perennial.dev/test-pool": name},
                           "taints": [{"key": "perennial.dev/test-pool", "value": name,
                                       "effect": "NoSchedule"}],
                           "minNodes": 1, "maxNodes": 1, "scaleDownDelaySeconds": 3,
                           "provider": {"kwok": {}}}))  # fmt: skip


def drop_pool(world: World, name: str) -> None:
    world.kube.delete(API_VERSION, "ComputePool", None, name)
    for node in world.kube.list("v1", "Node", None, f"{LABEL_COMPUTEPOOL}={name}"):
        world.kube.delete("v1", "Node", None, node["metadata"]["name"])


def snapshot(cluster: Any, world: World, title: str) -> None:
    """kubectl output for the docs, when PERENNIAL_ISVC_SNAPSHOTS names a file."""
    target = os.environ.get("PERENNIAL_ISVC_SNAPSHOTS")
    if not target:
        return
    parts = [f"### {title}"]
    for args in (
        ["get", "pisvc", "-o", "wide"],
        ["get", "deploy,hpa"],
        [
            "get",
            "events",
            "--field-selector",
            "involvedObject.kind=InferenceService",
            "--sort-by",
            ".lastTimestamp",
        ],
    ):
        out = cluster.kubectl("-n", world.ns, *args, check=False)
        parts.append(f"$ kubectl {' '.join(args)}\n{out.stdout}{out.stderr}")
    with open(target, "a") as fh:
        fh.write("\n".join(parts) + "\n")
