"""InferenceService on the real control plane, with the operator as a real process.

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
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from tests.support.operator_process import OperatorProcess
from tests.support.poll import until

from perennial_hack.local_runtime_claims import claim_manifests, pv_name
from perennial_operator.api.group import API_VERSION
from perennial_operator.k8s.resources import Kube, now_iso

pytestmark = pytest.mark.integration

CLAIM = "perennial-artifacts"
LABEL = "perennial.dev/inferenceservice"
_addresses = itertools.count(1)
PROFILE = {"features": [{"name": "age", "kind": "numeric", "edges": [30.0],
                         "proportions": [0.5, 0.5], "missing": 0.0}]}  # fmt: skip


@dataclass
class Behaviour:
    """What the pods of one model version report on /metrics."""

    ok: int = 200
    errors: int = 0
    latency_s: float = 0.004

    def metrics(self, model: str, version: int) -> str:
        mv = f'model="{model}",version="{version}"'
        lv = f'{mv},protocol="v2"'
        slow = self.latency_s > 0.005
        fast_count = 0 if slow else self.ok + self.errors
        total = self.ok + self.errors
        return "\n".join([
            "# TYPE perennial_requests counter",
            f'perennial_requests_total{{{lv},code="200"}} {self.ok}',
            f'perennial_requests_total{{{lv},code="500"}} {self.errors}',
            "# TYPE perennial_request_duration_seconds histogram",
            f'perennial_request_duration_seconds_bucket{{{lv},le="0.005"}} {fast_count}',
            f'perennial_request_duration_seconds_bucket{{{lv},le="1.0"}} {total}',
            f'perennial_request_duration_seconds_bucket{{{lv},le="+Inf"}} {total}',
            f"perennial_request_duration_seconds_count{{{lv}}} {total}",
            f"perennial_request_duration_seconds_sum{{{lv}}} {total * self.latency_s}",
            "# TYPE perennial_feature_bin counter",
            f'perennial_feature_bin_total{{{mv},feature="age",bin="0"}} 75',
            f'perennial_feature_bin_total{{{mv},feature="age",bin="1"}} 25',
            "# TYPE perennial_feedback counter",
            f'perennial_feedback_total{{{mv},outcome="correct"}} 9',
            f'perennial_feedback_total{{{mv},outcome="incorrect"}} 1',
            "",
        ])  # fmt: skip


class FakePods:
    """The kubelet stand-in and the pods' HTTP endpoint, for one namespace."""

    def __init__(self, kube: Kube, namespace: str) -> None:
        self.kube, self.ns = kube, namespace
        self.versions: dict[str, tuple[str, int]] = {}  # pod IP -> (model, version)
        self.behaviour: dict[int, Behaviour] = {}
        self.never_ready: set[int] = set()  # versions whose pods never start
        self.scraped: set[str] = set()
        self.stop = threading.Event()
        self.server = ThreadingHTTPServer(("0.0.0.0", 0), self._handler())
        self.port = self.server.server_address[1]
        self.threads = [threading.Thread(target=self.server.serve_forever, daemon=True),
                        threading.Thread(target=self._kubelet, daemon=True)]  # fmt: skip

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

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                ip = self.connection.getsockname()[0]
                model, version = fake.versions.get(ip, ("", 0))
                if self.path == "/metrics" and version:
                    fake.scraped.add(ip)
                    body = fake.behaviour.get(version, Behaviour()).metrics(model, version)
                    self._send(200, body.encode(), "text/plain; version=0.0.4")
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
                    if pod["spec"].get("nodeName") and not started \
                            and version not in self.never_ready:
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
        container = {"name": "server", "image": pod["spec"]["containers"][0]["image"],
                     "imageID": "", "ready": True, "started": True, "restartCount": 0,
                     "state": {"running": {"startedAt": stamp}}}  # fmt: skip
        self.kube.patch_status("v1", "Pod", self.ns, pod["metadata"]["name"], {
            "phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}], "hostIP": "10.0.0.1",
            "startTime": stamp, "conditions": conditions, "containerStatuses": [container],
        })  # fmt: skip


class World:
    def __init__(self, kube: Kube, ns: str, op: OperatorProcess, pods: FakePods,
                 cluster: Any) -> None:  # fmt: skip
        self.kube, self.ns, self.op, self.pods, self.cluster = kube, ns, op, pods, cluster

    def create(self, manifest: dict[str, Any]) -> dict[str, Any]:
        manifest["metadata"]["namespace"] = self.ns
        return self.kube.create(manifest)

    def modelversion(self, version: int, stage: str = "None") -> None:
        self.create({"apiVersion": API_VERSION, "kind": "ModelVersion",
                     "metadata": {"name": f"churn-v{version}"},
                     "spec": {"model": "churn", "version": version, "stage": stage,
                              "artifact": {"uri": f"pvc://{CLAIM}/models/churn/v{version}",
                                           "sha256": f"{version:02d}" * 32}}})  # fmt: skip

    def service(self, model: dict[str, Any], **spec: Any) -> None:
        self.create({"apiVersion": API_VERSION, "kind": "InferenceService",
                     "metadata": {"name": "churn"},
                     "spec": {"model": {"name": "churn", **model},
                              "resources": {"cpu": "50m", "memory": "64Mi"}, **spec}})  # fmt: skip

    def isvc(self) -> dict[str, Any]:
        return self.kube.get(API_VERSION, "InferenceService", self.ns, "churn") or {}

    def status(self) -> dict[str, Any]:
        return self.isvc().get("status") or {}

    def deployment(self, track: str) -> dict[str, Any] | None:
        return self.kube.get("apps/v1", "Deployment", self.ns, f"churn-{track}")

    def events(self) -> list[tuple[str, str, str]]:
        # Timestamps have whole seconds; our Events are never updated, so their
        # resourceVersion (etcd's revision) orders them as they were posted.
        items = sorted(self.kube.list("v1", "Event", self.ns),
                       key=lambda e: int(e["metadata"]["resourceVersion"]))
        return [(e["type"], e["reason"], e["message"]) for e in items
                if e["involvedObject"]["kind"] == "InferenceService"]  # fmt: skip

    def describe(self) -> str:
        return (json.dumps(self.status(), indent=1)[:3000] + "\n--- events ---\n"
                + "\n".join(map(str, self.events()[-15:]))
                + "\n--- operator log ---\n" + self.op.log_tail())  # fmt: skip

    def wait(self, fn: Any, message: str, timeout: float = 60.0) -> Any:
        return until(fn, timeout=timeout, message=message, describe=self.describe)

    def wait_status(self, message: str, timeout: float = 60.0, **want: Any) -> dict[str, Any]:
        def matches() -> dict[str, Any] | None:
            status = self.status()
            return status if all(status.get(k) == v for k, v in want.items()) else None

        return self.wait(matches, message, timeout)

    def snapshot(self, title: str) -> None:
        """kubectl output for the docs, when PERENNIAL_ISVC_SNAPSHOTS names a file."""
        target = os.environ.get("PERENNIAL_ISVC_SNAPSHOTS")
        if not target:
            return
        parts = [f"### {title}"]
        for args in (["get", "pisvc", "-o", "wide"], ["get", "deploy,hpa"],
                     ["get", "events", "--field-selector", "involvedObject.kind=InferenceService",
                      "--sort-by", ".lastTimestamp"]):  # fmt: skip
            out = self.cluster.kubectl("-n", self.ns, *args, check=False)
            parts.append(f"$ kubectl {' '.join(args)}\n{out.stdout}{out.stderr}")
        with open(target, "a") as fh:
            fh.write("\n".join(parts) + "\n")


@pytest.fixture
def world(cluster: Any, namespace: str, tmp_path: Path):
    kube = Kube(cluster.api_client())
    core = client.CoreV1Api(kube.api)
    pv, pvc = claim_manifests(namespace, CLAIM, tmp_path / "claim")
    core.create_persistent_volume(pv)
    core.create_namespaced_persistent_volume_claim(namespace, pvc)
    with FakePods(kube, namespace) as pods:
        op = OperatorProcess(
            str(cluster.kubeconfig), namespace, tmp_path / "operator.log",
            pod_annotations={"kwok.x-k8s.io/status": "custom"},
            extra_env={"PERENNIAL_POD_URL_TEMPLATE": f"http://{{ip}}:{pods.port}"},
        ).start()  # fmt: skip
        try:
            yield World(kube, namespace, op, pods, cluster)
        finally:
            op.stop()
            core.delete_persistent_volume(pv_name(namespace, CLAIM))


def test_pinned_service_with_autoscaling_serves_then_deletes_everything(world: World) -> None:
    world.modelversion(1)
    world.service({"version": 1}, autoscaling={"minReplicas": 2, "maxReplicas": 4,
                                               "targetCPUUtilization": 70})  # fmt: skip
    stable = world.wait(lambda: world.deployment("stable"), "the stable Deployment")
    pod = stable["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["args"][:2] == ["perennial-serve", "--model-dir"]
    assert "/mnt/pvc/perennial-artifacts/models/churn/v1" in container["args"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert stable["metadata"]["ownerReferences"][0]["kind"] == "InferenceService"
    hpa = world.kube.get("autoscaling/v2", "HorizontalPodAutoscaler", world.ns, "churn")
    assert hpa and hpa["spec"]["scaleTargetRef"]["name"] == "churn-stable"
    svc = world.kube.get("v1", "Service", world.ns, "churn")
    assert svc and svc["spec"]["selector"] == {LABEL: "churn"}
    # Pods exist only if Pod Security "restricted" admitted them; the HPA sets 2 of them.
    status = world.wait_status("Ready on the HPA's two replicas", phase="Ready",
                               readyReplicas=2)  # fmt: skip
    assert status["currentVersion"] == 1 and status["currentModelVersion"] == "churn-v1"
    assert status["url"] == f"http://churn.{world.ns}.svc.cluster.local/v2/models/churn"
    assert status["selector"] == f"{LABEL}=churn"
    conds = {c["type"]: c["status"] for c in status["conditions"]}
    assert conds == {"ModelResolved": "True", "Progressing": "False", "Ready": "True"}
    ours = [m for m in world.deployment("stable")["metadata"]["managedFields"]
            if m["manager"] == "perennial"]  # fmt: skip
    assert ours and "f:replicas" not in ours[0]["fieldsV1"]["f:spec"]  # the HPA owns them
    # Drift and the live metric come from the pods' counters (interval: the CRD's minimum).
    world.kube.patch(API_VERSION, "InferenceService", world.ns, "churn",
                     {"spec": {"monitoring": {"drift": {"intervalSeconds": 10}}}})  # fmt: skip
    drift = world.wait(lambda: (d := world.status().get("drift")) and d["samples"] == 200 and d,
                       "status.drift summed over both pods (100 each)", timeout=40)  # fmt: skip
    assert drift["features"]["age"] == pytest.approx(0.274653, abs=1e-5)
    assert drift["psi"] == drift["features"]["age"] and drift["worst"] == ["age"]
    assert world.status()["liveMetric"] == {"name": "accuracy", "value": 0.9, "samples": 20}
    world.kube.delete(API_VERSION, "InferenceService", world.ns, "churn")
    def all_gone() -> bool:
        return (not world.kube.list("apps/v1", "Deployment", world.ns)
                and world.kube.get("v1", "Service", world.ns, "churn") is None
                and world.kube.get("autoscaling/v2", "HorizontalPodAutoscaler", world.ns,
                                   "churn") is None)  # fmt: skip

    world.wait(all_gone, "garbage collection of every child")


def _snapshot_rollout(world: World) -> tuple[Any, ...]:
    stable, canary = world.deployment("stable"), world.deployment("canary")
    weight = (world.status().get("canary") or {}).get("weight")
    return (weight, stable and stable["spec"]["replicas"], canary and canary["spec"]["replicas"])


def test_canary_walks_every_step_and_promotes(world: World) -> None:
    world.modelversion(1)
    world.modelversion(2)
    world.service({"version": 1}, replicas=2,
                  rollout={"strategy": "Canary", "steps": [25, 50, 100], "stepSeconds": 2})
    world.wait_status("v1 Ready", phase="Ready", readyReplicas=2)
    world.cluster.kubectl("-n", world.ns, "scale", "inferenceservice/churn", "--replicas=4")
    world.wait_status("scaled to 4 through the scale subresource", phase="Ready",
                      readyReplicas=4)  # fmt: skip
    world.kube.patch(API_VERSION, "InferenceService", world.ns, "churn",
                     {"spec": {"model": {"version": 2}}})  # fmt: skip
    seen: list[tuple[Any, ...]] = []

    def promoted() -> bool:
        snap = _snapshot_rollout(world)
        if not seen or seen[-1] != snap:
            seen.append(snap)
            if snap == (50, 2, 2):
                world.snapshot("mid-canary (step 2 of 3)")
        status = world.status()
        return status.get("currentVersion") == 2 and not status.get("canary")

    world.wait(promoted, "promotion of v2", timeout=90)
    weights = [w for w, _, _ in seen if w is not None]
    assert [w for i, w in enumerate(weights) if i == 0 or weights[i - 1] != w] == [25, 50, 100]
    for step in ((25, 3, 1), (50, 2, 2), (100, 0, 4)):
        assert step in seen, seen
    world.wait(lambda: world.deployment("canary") is None, "the canary Deployment removed")
    stable = world.deployment("stable")
    assert stable["spec"]["template"]["metadata"]["labels"]["perennial.dev/model-version"] == "2"
    reasons = [r for _, r, _ in world.events()]
    assert reasons[reasons.index("CanaryStarted"):] == [
        "CanaryStarted", "CanaryStep", "CanaryStep", "Promoted", "RolloutComplete"]
    messages = [m for _, r, m in world.events() if r in ("CanaryStarted", "CanaryStep")]
    assert "at 25% (1 canary, 3 stable pods)" in messages[0]
    assert "at 50% (2 canary, 2 stable pods)" in messages[1]
    assert "canary: 200 requests, error rate 0.0000" in messages[1]
    world.wait_status("Ready on v2", phase="Ready", readyReplicas=4)


def test_canary_breaching_the_error_rate_is_rolled_back(world: World) -> None:
    world.pods.behaviour[2] = Behaviour(ok=160, errors=40)
    world.modelversion(1)
    world.modelversion(2)
    world.service({"version": 1}, replicas=2,
                  rollout={"strategy": "Canary", "steps": [50, 100], "stepSeconds": 1,
                           "maxErrorRate": 0.05})  # fmt: skip
    world.wait_status("v1 Ready", phase="Ready", readyReplicas=2)
    stable_uid = world.deployment("stable")["metadata"]["uid"]
    world.kube.patch(API_VERSION, "InferenceService", world.ns, "churn",
                     {"spec": {"model": {"version": 2}}})  # fmt: skip
    world.wait(lambda: world.deployment("canary"), "the canary Deployment")
    status = world.wait_status("rolled back", phase="RolledBack", timeout=90)
    world.snapshot("after the rollback")
    assert status["lastRollback"]["version"] == 2
    assert status["lastRollback"]["reason"] == "ErrorRateExceeded"
    assert status["currentVersion"] == 1 and "canary" not in status
    world.wait(lambda: world.deployment("canary") is None, "the canary Deployment removed")
    stable = world.deployment("stable")
    assert stable["metadata"]["uid"] == stable_uid
    assert stable["spec"]["template"]["metadata"]["labels"]["perennial.dev/model-version"] == "1"
    assert stable["spec"]["replicas"] == 2
    mv = world.kube.get(API_VERSION, "ModelVersion", world.ns, "churn-v2")
    (rejection,) = mv["status"]["rejections"]
    assert rejection["inferenceService"] == "churn"
    assert rejection["reason"] == "ErrorRateExceeded"
    assert "error rate 0.2000 > maxErrorRate 0.05" in rejection["message"]
    rolled = [(t, m) for t, r, m in world.events() if r == "RolledBack"]
    assert rolled and rolled[0][0] == "Warning"
    conds = {c["type"]: c for c in status["conditions"]}
    assert conds["ModelResolved"]["reason"] == "ModelVersionRejected"
    assert conds["Progressing"]["reason"] == "ErrorRateExceeded"
    # Resolution now skips v2: the operator does not try it again.
    world.wait_status("still rolled back after a resync", phase="RolledBack", currentVersion=1)
    assert world.deployment("canary") is None


def test_tracking_waits_for_a_model_then_follows_the_stage(world: World) -> None:
    world.service({"stage": "Production"}, replicas=1)
    status = world.wait_status("Pending without a model", phase="Pending")
    cond = next(c for c in status["conditions"] if c["type"] == "ModelResolved")
    assert (cond["status"], cond["reason"]) == ("False", "NoVersionInStage")
    world.modelversion(1, stage="Production")
    world.wait_status("v1 Ready by itself", phase="Ready", currentVersion=1, readyReplicas=1)
    world.modelversion(2, stage="Staging")
    world.wait(lambda: world.kube.get(API_VERSION, "ModelVersion", world.ns, "churn-v2")
               .get("status", {}).get("phase") == "Ready", "v2 Ready")  # fmt: skip
    assert world.status()["currentVersion"] == 1
    world.kube.patch(API_VERSION, "ModelVersion", world.ns, "churn-v2",
                     {"spec": {"stage": "Production"}})  # fmt: skip
    world.wait_status("v2 rolled out by itself", phase="Ready", currentVersion=2, timeout=90)
    stable = world.deployment("stable")
    assert stable["spec"]["template"]["metadata"]["labels"]["perennial.dev/model-version"] == "2"
    assert [r for _, r, _ in world.events()][-2:] == ["RolloutStarted", "RolledOut"]


def test_operator_killed_mid_canary_resumes_at_its_step(world: World) -> None:
    world.modelversion(1)
    world.modelversion(2)
    world.service({"version": 1}, replicas=2,
                  rollout={"strategy": "Canary", "steps": [50, 100], "stepSeconds": 3})
    world.wait_status("v1 Ready", phase="Ready", readyReplicas=2)
    world.kube.patch(API_VERSION, "InferenceService", world.ns, "churn",
                     {"spec": {"model": {"version": 2}}})  # fmt: skip
    world.wait(lambda: (world.status().get("canary") or {}).get("weight") == 50, "step 1 (50%)")
    world.op.kill()  # right after the step was written: the rollout must resume, not restart
    world.op.start()
    world.wait_status("promoted after the restart", phase="Ready", currentVersion=2, timeout=90)
    reasons = [r for _, r, _ in world.events()]
    assert reasons.count("CanaryStarted") == 1, reasons  # resumed, not restarted
    assert reasons[reasons.index("CanaryStarted"):] == [
        "CanaryStarted", "CanaryStep", "Promoted", "RolloutComplete"]
    world.wait(lambda: len(world.kube.list("apps/v1", "Deployment", world.ns)) == 1,
               "only the stable Deployment left")  # fmt: skip


def test_canary_never_ready_is_rolled_back_at_the_deadline(world: World) -> None:
    world.pods.never_ready.add(2)
    world.modelversion(1)
    world.modelversion(2)
    world.service({"version": 1}, replicas=2,
                  rollout={"strategy": "Canary", "steps": [50, 100], "stepSeconds": 1,
                           "readyDeadlineSeconds": 3})  # fmt: skip
    world.wait_status("v1 Ready", phase="Ready", readyReplicas=2)
    world.kube.patch(API_VERSION, "InferenceService", world.ns, "churn",
                     {"spec": {"model": {"version": 2}}})  # fmt: skip
    status = world.wait_status("rolled back at the deadline", phase="RolledBack", timeout=60)
    assert status["lastRollback"]["reason"] == "ReadyDeadlineExceeded"
    world.wait(lambda: world.deployment("canary") is None, "the canary Deployment removed")
    (rejection,) = world.kube.get(API_VERSION, "ModelVersion", world.ns, "churn-v2")[
        "status"]["rejections"]  # fmt: skip
    assert "canary not ready within 3s (0/1 ready)" in rejection["message"]
