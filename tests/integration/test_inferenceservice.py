"""InferenceService on the real control plane, with the operator as a real process.

The world (tests/support/world.py, tests/support/inferenceservice.py): kwok leaves the
serving pods alone; a kubelet stand-in marks each scheduled pod Running and Ready with its own
loopback IP and one HTTP server answers /metrics and the drift profile for every such IP.
"""

from __future__ import annotations

import contextlib
import re
import subprocess
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from perennial_operator.api.group import API_VERSION
from perennial_operator.api.rejections import rejections_of
from perennial_operator.api.timestamps import epoch
from support.inferenceservice import (
    LABEL,
    Behaviour,
    FakePods,
    condition,
    deployment,
    drop_pool,
    fake_pods,
    kwok_pool,
    modelversion,
    operator_options,
    pin,
    service,
    service_events,
    service_status,
    serving_claim,
    serving_v1_of_two,
    snapshot,
    wait_status,
)
from support.kstatus import check_health
from support.world import World

pytestmark = pytest.mark.integration
__all__ = ["fake_pods", "operator_options", "serving_claim"]  # fixtures


def test_pinned_service_with_autoscaling_serves_then_deletes_everything(
    world: World, cluster: Any
) -> None:
    modelversion(world, 1)
    service(
        world,
        {"version": 1},
        autoscaling={"minReplicas": 2, "maxReplicas": 4, "targetCPUUtilization": 70},
    )
    stable = world.wait(lambda: deployment(world, "stable"), "the stable Deployment")
    pod = stable["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["command"] == ["perennial-serve"]
    assert container["args"][0] == "--model-dir"
    assert "/mnt/pvc/perennial-artifacts/models/churn/v1" in container["args"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert stable["metadata"]["ownerReferences"][0]["kind"] == "InferenceService"
    hpa = world.kube.get("autoscaling/v2", "HorizontalPodAutoscaler", world.ns, "churn")
    assert hpa and hpa["spec"]["scaleTargetRef"]["name"] == "churn-stable"
    svc = world.kube.get("v1", "Service", world.ns, "churn")
    assert svc and svc["spec"]["selector"] == {LABEL: "churn"}
    # Pods exist only if Pod Security "restricted" admitted them; the HPA sets 2 of them.
    status = wait_status(world, "Ready on the HPA's two replicas", phase="Ready", readyReplicas=2)
    assert status["currentVersion"] == 1 and status["currentModelVersion"] == "churn-v1"
    assert status["url"] == f"http://churn.{world.ns}.svc.cluster.local/v2/models/churn"
    assert status["selector"] == f"{LABEL}=churn"
    conds = {c["type"]: c["status"] for c in status["conditions"]}
    assert conds == {"ModelResolved": "True", "Progressing": "False", "Ready": "True"}
    ours = [
        m
        for m in deployment(world, "stable")["metadata"]["managedFields"]
        if m["manager"] == "perennial"
    ]
    assert ours and "f:replicas" not in ours[0]["fieldsV1"]["f:spec"]  # the HPA owns them
    # Drift and the live metric come from the pods' counters (interval: the CRD's minimum).
    world.kube.patch(
        API_VERSION,
        "InferenceService",
        world.ns,
        "churn",
        {"spec": {"monitoring": {"drift": {"intervalSeconds": 10}}}},
    )
    drift = world.wait(
        lambda: (d := service_status(world).get("drift")) and d["samples"] == 200 and d,
        "status.drift summed over both pods (100 each)",
        timeout=40,
    )
    assert drift["features"]["age"] == pytest.approx(0.274653, abs=1e-5)
    assert drift["psi"] == drift["features"]["age"] and drift["worst"] == ["age"]
    assert service_status(world)["liveMetric"] == {"name": "accuracy", "value": 0.9, "samples": 20}
    world.kube.delete(API_VERSION, "InferenceService", world.ns, "churn")

    def all_gone() -> bool:
        return (
            not world.kube.list("apps/v1", "Deployment", world.ns)
            and world.kube.get("v1", "Service", world.ns, "churn") is None
            and world.kube.get("autoscaling/v2", "HorizontalPodAutoscaler", world.ns, "churn")
            is None
        )

    world.wait(all_gone, "garbage collection of every child")


def _snapshot_rollout(world: World) -> tuple[Any, ...]:
    stable, canary = deployment(world, "stable"), deployment(world, "canary")
    weight = (service_status(world).get("canary") or {}).get("weight")
    return (weight, stable and stable["spec"]["replicas"], canary and canary["spec"]["replicas"])


def _walk_to_promotion(world: World, cluster: Any) -> list[tuple[Any, ...]]:
    """Pin v2 and poll (weight, stable, canary replicas) until it is promoted; checks the
    service's health mid-canary. The states seen, each once in a row."""
    pin(world, 2)
    seen: list[tuple[Any, ...]] = []
    mid: list[dict[str, Any]] = []

    def promoted() -> bool:
        snap = _snapshot_rollout(world)
        if not seen or seen[-1] != snap:
            seen.append(snap)
            if snap == (50, 2, 2):
                snapshot(cluster, world, "mid-canary (step 2 of 3)")
        if snap == (50, 2, 2):
            mid.append(world.get("InferenceService", "churn"))
        status = service_status(world)
        return status.get("currentVersion") == 2 and not status.get("canary")

    world.wait(promoted, "promotion of v2", timeout=90)
    assert mid, "the canary was seen at 50%"
    # every replica is ready mid-canary, yet the rollout is not done: not Ready, not Healthy
    assert check_health(mid[0], "InProgress")["message"].startswith("step 2/3")
    return seen


@contextlib.contextmanager
def _replica_changes(cluster: Any, namespace: str) -> Iterator[list[tuple[str, int, int]]]:
    """Each Deployment's (name, spec.replicas, status.readyReplicas) as they change, in the
    order a watch delivers the changes. A poll misses a state shorter than its interval: the
    surge's (canary up, stable not yet down) lasts only until the canary's pods are ready,
    which the kubelet stand-in makes quick (a poll missed it in a CI run)."""
    columns = "NAME:.metadata.name,REPLICAS:.spec.replicas,READY:.status.readyReplicas"
    argv = [cluster.kubectl_bin, "--kubeconfig", str(cluster.kubeconfig), "-n", namespace,
            "get", "deployments", "--watch", "--no-headers",
            "-o", f"custom-columns={columns}"]  # fmt: skip
    watch = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    changes: list[tuple[str, int, int]] = []

    def read() -> None:
        last: dict[str, tuple[int, int]] = {}
        for line in watch.stdout or ():
            name, replicas, ready = (line.split() + ["", "", ""])[:3]
            if not replicas.isdigit():
                continue
            now = (int(replicas), int(ready) if ready.isdigit() else 0)  # <none>: 0
            if last.get(name) != now:
                last[name] = now
                changes.append((name, *now))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        yield changes
    finally:
        watch.terminate()
        watch.wait(timeout=10)
        reader.join(timeout=10)
        if watch.stdout:
            watch.stdout.close()


def _first(changes: list[tuple[str, int, int]], name: str, replicas: int, ready: int) -> int:
    """Where `name` first had `replicas`, and at least `ready` of them ready."""
    found = [
        i for i, c in enumerate(changes) if c[0] == name and c[1] == replicas and c[2] >= ready
    ]
    assert found, (name, replicas, ready, changes)
    return found[0]


def test_canary_walks_every_step_and_promotes(world: World, cluster: Any) -> None:
    serving_v1_of_two(
        world, replicas=2, rollout={"strategy": "Canary", "steps": [25, 50, 100], "stepSeconds": 2}
    )
    cluster.kubectl("-n", world.ns, "scale", "inferenceservice/churn", "--replicas=4")
    wait_status(world, "scaled to 4 through the scale subresource", phase="Ready", readyReplicas=4)
    with _replica_changes(cluster, world.ns) as changes:
        seen = _walk_to_promotion(world, cluster)
        world.wait(lambda: deployment(world, "canary") is None, "the canary Deployment removed")
    weights = [w for w, _, _ in seen if w is not None]
    assert [w for i, w in enumerate(weights) if i == 0 or weights[i - 1] != w] == [25, 50, 100]
    for step in ((25, 3, 1), (50, 2, 2), (100, 0, 4)):
        assert step in seen, seen
    # surge: each step's canary pods come first; the stable shrinks once they are ready
    assert _first(changes, "churn-canary", 1, 1) < _first(changes, "churn-stable", 3, 0), changes
    assert _first(changes, "churn-canary", 2, 2) < _first(changes, "churn-stable", 2, 0), changes
    stable = deployment(world, "stable")
    assert stable["spec"]["template"]["metadata"]["labels"]["perennial.dev/model-version"] == "2"
    reasons = [r for _, r, _ in service_events(world)]
    assert reasons[reasons.index("CanaryStarted") :] == [
        "CanaryStarted",
        "CanaryStep",
        "CanaryStep",
        "Promoted",
        "RolloutComplete",
    ]
    messages = [m for _, r, m in service_events(world) if r in ("CanaryStarted", "CanaryStep")]
    assert (
        "at 25% (1 canary, 3 stable pods; the stable keeps 4 until the canary is ready)"
        in (messages[0])
    )
    assert "at 50% (2 canary, 2 stable pods; the stable keeps 3 until" in messages[1]
    # The step's own requests: whole batches of 200 from the scrapes after its baseline (how
    # many scrapes that is depends on the ticks, so not an exact count).
    step_requests = re.search(r"canary: (\d+) requests, error rate 0\.0000", messages[1])
    assert step_requests is not None, messages[1]
    assert int(step_requests.group(1)) > 0 and int(step_requests.group(1)) % 200 == 0
    wait_status(world, "Ready on v2", phase="Ready", readyReplicas=4)
    check_health(world.get("InferenceService", "churn"), "Current")


def test_canary_breaching_the_error_rate_is_rolled_back(
    world: World, fake_pods: FakePods, cluster: Any
) -> None:
    fake_pods.behaviour[2] = Behaviour(ok=160, errors=40)
    serving_v1_of_two(
        world,
        replicas=2,
        rollout={"strategy": "Canary", "steps": [50, 100], "stepSeconds": 1, "maxErrorRate": 0.05},
    )
    stable_uid = deployment(world, "stable")["metadata"]["uid"]
    pin(world, 2)
    world.wait(lambda: deployment(world, "canary"), "the canary Deployment")
    status = wait_status(world, "rolled back", phase="RolledBack", timeout=90)
    snapshot(cluster, world, "after the rollback")
    assert status["lastRollback"]["version"] == 2
    assert status["lastRollback"]["reason"] == "ErrorRateExceeded"
    assert status["currentVersion"] == 1 and "canary" not in status
    world.wait(lambda: deployment(world, "canary") is None, "the canary Deployment removed")
    stable = deployment(world, "stable")
    assert stable["metadata"]["uid"] == stable_uid
    assert stable["spec"]["template"]["metadata"]["labels"]["perennial.dev/model-version"] == "1"
    assert stable["spec"]["replicas"] == 2
    mv = world.kube.get(API_VERSION, "ModelVersion", world.ns, "churn-v2")
    (rejection,) = rejections_of(mv)
    assert rejection.service == "churn" and not rejection.retried
    assert rejection.reason == "ErrorRateExceeded"
    assert "error rate 0.2000 > maxErrorRate 0.05" in rejection.message
    assert "rejections" not in mv["status"]  # an annotation: backups and GitOps keep it
    check_health(world.get("InferenceService", "churn"), "Failed")
    rolled = [(t, m) for t, r, m in service_events(world) if r == "RolledBack"]
    assert rolled and rolled[0][0] == "Warning"
    reasons = [r for _, r, _ in service_events(world)]
    assert reasons[reasons.index("CanaryStarted") :] == ["CanaryStarted", "RolledBack"]  # step 1
    conds = {c["type"]: c for c in status["conditions"]}
    assert conds["ModelResolved"]["reason"] == "ModelVersionRejected"
    assert conds["Progressing"]["reason"] == "ErrorRateExceeded"
    # Resolution now skips v2: the operator does not try it again.
    wait_status(world, "still rolled back after a resync", phase="RolledBack", currentVersion=1)
    assert deployment(world, "canary") is None


def test_a_breach_in_a_later_step_is_not_hidden_by_the_earlier_steps(
    world: World, fake_pods: FakePods
) -> None:
    """Each step is judged on its own traffic. Step 1 serves 2000 clean requests per scrape;
    step 2 answers 10 of every 110 with a 500 (9 %). Since the pods started that is well
    under 1 %, so a cumulative analysis would promote; the step's own numbers roll it back."""
    fake_pods.behaviour[2] = Behaviour(ok=2000)
    serving_v1_of_two(
        world,
        replicas=2,
        rollout={"strategy": "Canary", "steps": [50, 100], "stepSeconds": 2, "maxErrorRate": 0.05},
    )
    pin(world, 2)
    world.wait(lambda: (service_status(world).get("canary") or {}).get("step") == 1, "step 2")
    fake_pods.behaviour[2] = Behaviour(ok=100, errors=10)
    status = wait_status(world, "rolled back", phase="RolledBack", timeout=90)
    assert status["lastRollback"]["reason"] == "ErrorRateExceeded"
    reasons = [r for _, r, _ in service_events(world)]
    assert reasons[reasons.index("CanaryStarted") :] == [
        "CanaryStarted",
        "CanaryStep",
        "RolledBack",
    ]
    mv = world.kube.get(API_VERSION, "ModelVersion", world.ns, "churn-v2")
    (rejection,) = rejections_of(mv)
    assert "error rate 0.0909 > maxErrorRate 0.05" in rejection.message, rejection


def test_errors_before_a_step_began_do_not_fail_it(world: World, fake_pods: FakePods) -> None:
    """The canary's pods count 100 errors before the step's clock starts (a burst while
    coming up), then serve clean. Since the pods started that is a 20 % error rate at the
    first step; the steps themselves are clean, so the canary is promoted."""
    fake_pods.behaviour[2] = Behaviour(ok=200, startup_errors=100)
    serving_v1_of_two(
        world,
        replicas=2,
        rollout={"strategy": "Canary", "steps": [50, 100], "stepSeconds": 1, "maxErrorRate": 0.05},
    )
    pin(world, 2)
    wait_status(world, "v2 promoted", currentVersion=2, timeout=90)
    steps = [m for _, r, m in service_events(world) if r in ("CanaryStep", "Promoted")]
    assert len(steps) == 2 and all("error rate 0.0000" in m for m in steps), steps
    assert "RolledBack" not in [r for _, r, _ in service_events(world)]


def test_tracking_waits_for_a_model_then_follows_the_stage(world: World) -> None:
    service(world, {"stage": "Production"}, replicas=1)
    status = wait_status(world, "Pending without a model", phase="Pending")
    cond = next(c for c in status["conditions"] if c["type"] == "ModelResolved")
    assert (cond["status"], cond["reason"]) == ("False", "NoVersionInStage")
    modelversion(world, 1, stage="Production")
    wait_status(world, "v1 Ready by itself", phase="Ready", currentVersion=1, readyReplicas=1)
    modelversion(world, 2, stage="Staging")
    world.wait(
        lambda: (
            world.kube.get(API_VERSION, "ModelVersion", world.ns, "churn-v2")
            .get("status", {})
            .get("phase")
            == "Ready"
        ),
        "v2 Ready",
    )
    assert service_status(world)["currentVersion"] == 1
    world.kube.patch(
        API_VERSION, "ModelVersion", world.ns, "churn-v2", {"spec": {"stage": "Production"}}
    )
    wait_status(world, "v2 rolled out by itself", phase="Ready", currentVersion=2, timeout=90)
    stable = deployment(world, "stable")
    assert stable["spec"]["template"]["metadata"]["labels"]["perennial.dev/model-version"] == "2"
    assert [r for _, r, _ in service_events(world)][-2:] == ["RolloutStarted", "RolledOut"]


def test_operator_killed_mid_canary_resumes_at_its_step(world: World) -> None:
    serving_v1_of_two(
        world, replicas=2, rollout={"strategy": "Canary", "steps": [50, 100], "stepSeconds": 3}
    )
    pin(world, 2)
    world.wait(
        lambda: (service_status(world).get("canary") or {}).get("weight") == 50, "step 1 (50%)"
    )
    world.op.kill()  # right after the step was written: the rollout must resume, not restart
    world.op.start()
    wait_status(world, "promoted after the restart", phase="Ready", currentVersion=2, timeout=90)
    reasons = [r for _, r, _ in service_events(world)]
    assert reasons.count("CanaryStarted") == 1, reasons  # resumed, not restarted
    assert reasons[reasons.index("CanaryStarted") :] == [
        "CanaryStarted",
        "CanaryStep",
        "Promoted",
        "RolloutComplete",
    ]
    world.wait(
        lambda: len(world.kube.list("apps/v1", "Deployment", world.ns)) == 1,
        "only the stable Deployment left",
    )


def test_canary_never_ready_is_rolled_back_at_the_deadline(
    world: World, fake_pods: FakePods
) -> None:
    fake_pods.never_ready.add(2)
    serving_v1_of_two(
        world,
        replicas=2,
        rollout={
            "strategy": "Canary",
            "steps": [50, 100],
            "stepSeconds": 1,
            "readyDeadlineSeconds": 3,
        },
    )
    pin(world, 2)
    status = wait_status(world, "rolled back at the deadline", phase="RolledBack", timeout=60)
    assert status["lastRollback"]["reason"] == "ReadyDeadlineExceeded"
    world.wait(lambda: deployment(world, "canary") is None, "the canary Deployment removed")
    (rejection,) = rejections_of(world.kube.get(API_VERSION, "ModelVersion", world.ns, "churn-v2"))
    assert "canary not ready within 3s (0/1 ready)" in rejection.message


def test_a_canary_ready_late_still_serves_its_share_for_step_seconds(
    world: World, fake_pods: FakePods
) -> None:
    """The step's clock starts when the canary is ready at the step's size, not when the step
    began: a canary that took longer than stepSeconds to come up is not passed at once."""
    fake_pods.never_ready.add(2)
    serving_v1_of_two(
        world, replicas=2, rollout={"strategy": "Canary", "steps": [50, 100], "stepSeconds": 3}
    )
    pin(world, 2)
    began = world.wait(
        lambda: (c := service_status(world).get("canary")) and c.get("weight") == 50 and c,
        "step 1 (50%) began",
    )
    world.wait(lambda: deployment(world, "canary"), "the canary Deployment")
    time.sleep(5)  # the canary's pods stay unready for longer than stepSeconds (setup)
    waiting = service_status(world)["canary"]
    assert waiting["step"] == 0 and "servingSince" not in waiting, waiting
    fake_pods.never_ready.discard(2)  # the kubelet starts them now

    serving = world.wait(
        lambda: (c := service_status(world).get("canary")) and c.get("servingSince") and c,
        "the step's clock started",
    )
    assert serving["step"] == 0
    assert serving["stepStartedAt"] == began["stepStartedAt"]
    late = epoch(serving["servingSince"]) - epoch(serving["stepStartedAt"])
    assert late >= 5, serving
    nxt = world.wait(
        lambda: (c := service_status(world).get("canary")) and c.get("step") == 1 and c,
        "step 2 (100%)",
        timeout=30,
    )
    held = epoch(nxt["stepStartedAt"]) - epoch(serving["servingSince"])
    assert held >= 3, (serving, nxt)  # stepSeconds at the step's share, counted from ready
    wait_status(world, "v2 promoted", phase="Ready", currentVersion=2, timeout=60)
    reasons = [r for _, r, _ in service_events(world)]
    assert reasons[reasons.index("CanaryStarted") :] == [
        "CanaryStarted",
        "CanaryStep",
        "Promoted",
        "RolloutComplete",
    ]


def test_a_missing_compute_pool_is_a_condition_until_the_pool_appears(world: World) -> None:
    pool = f"isvc-{world.ns}"[:63]
    modelversion(world, 1)
    service(world, {"version": 1}, replicas=1, computePool=pool)
    cond = world.wait(
        lambda: (c := condition(world, "Progressing")).get("reason") == "ComputePoolNotFound" and c,
        "Progressing=False, ComputePoolNotFound",
    )
    assert cond["status"] == "False"
    assert cond["message"] == (
        f"ComputePool {pool} does not exist; the Deployments are left as they are"
    )
    assert service_status(world)["phase"] == "Pending"
    assert deployment(world, "stable") is None, "no pod placed off its pool"
    # Another reconcile (a spec change) keeps the condition and posts no second Warning.
    world.kube.patch(API_VERSION, "InferenceService", world.ns, "churn", {"spec": {"replicas": 2}})
    generation = world.get("InferenceService", "churn")["metadata"]["generation"]
    wait_status(world, "the change reconciled", observedGeneration=generation)
    assert condition(world, "Progressing")["reason"] == "ComputePoolNotFound"
    warnings = [(r, m) for t, r, m in service_events(world) if t == "Warning"]
    assert warnings == [("ComputePoolNotFound", cond["message"])], warnings

    kwok_pool(world, pool)
    try:
        # The pool's creation itself re-syncs the service (well before the 30 s resync timer).
        world.wait(lambda: deployment(world, "stable"), "the stable Deployment", timeout=15)
        status = wait_status(
            world, "Ready on the pool once it exists", phase="Ready", readyReplicas=2, timeout=90
        )
        cond = condition(world, "Progressing")
        assert (cond["status"], cond["reason"]) == ("False", "RolloutComplete"), status
        pod = deployment(world, "stable")["spec"]["template"]["spec"]
        assert pod["nodeSelector"] == {"perennial.dev/test-pool": pool}
        assert [t for t, r, _ in service_events(world) if r == "ComputePoolNotFound"] == ["Warning"]
    finally:
        drop_pool(world, pool)
