"""Model resolution (pinned, tracked, rejected, not ready) and the InferenceService status
(phase, conditions, rollout state round trip), as tables."""

from __future__ import annotations

from typing import Any

import pytest

from perennial_operator.api.rejections import record, retry_key
from perennial_operator.api.timestamps import format_time
from perennial_operator.decide.rollout.machine import InFlight, Plan, State, Track
from perennial_operator.decide.rollout.observed import ready_pod_ips, track_of
from perennial_operator.decide.rollout.resolution import Resolution, Target, resolve
from perennial_operator.decide.rollout.status import (
    Pods,
    inferenceservice_status,
    pool_events,
    rollout_spec,
    state_from_status,
)

pytestmark = pytest.mark.unit

NOW = "2026-11-27T14:00:00Z"


def mv(version: int, stage: str = "None", phase: str | None = "Ready", model: str = "churn",
       rejected_by: str | None = None, uri: str = "pvc://a/m") -> dict[str, Any]:  # fmt: skip
    status: dict[str, Any] = {"phase": phase} if phase else {}
    if rejected_by:
        status["rejections"] = [{"inferenceService": rejected_by, "reason": "ErrorRateExceeded"}]
    return {
        "metadata": {"name": f"{model}-v{version}"},
        "spec": {
            "model": model,
            "version": version,
            "stage": stage,
            "artifact": {"uri": uri, "sha256": "ab" * 32},
        },
        "status": status,
    }


def annotated(version: int, stage: str, service: str, retried: bool = False) -> dict[str, Any]:
    """A version rejected by `service` in an annotation, and retried by the user or not."""
    out = mv(version, stage)
    notes = record(service, "ErrorRateExceeded", "m", "2026-11-27T13:00:00.000001Z")
    if retried:
        notes[retry_key(service)] = "2026-11-27T13:00:00.000001Z"
    out["metadata"]["annotations"] = notes
    return out


RESOLVE_CASES = [
    # id, spec.model, ModelVersions, target version, reason, rejected
    ("pinned", {"version": 2}, [mv(1), mv(2)], 2, "ModelVersionResolved", ()),
    ("pinned-missing", {"version": 3}, [mv(1)], None, "ModelVersionNotFound", ()),
    ("pinned-not-verified-yet", {"version": 1}, [mv(1, phase=None)], None,
     "ModelVersionNotReady", ()),
    ("pinned-rejected", {"version": 2}, [mv(1), mv(2, rejected_by="svc")], None,
     "ModelVersionRejected", (2,)),
    ("pinned-rejected-by-another-service", {"version": 2}, [mv(2, rejected_by="other")], 2,
     "ModelVersionResolved", ()),
    ("pinned-s3-artifact", {"version": 1}, [mv(1, uri="s3://b/m")], 1,
     "ModelVersionResolved", ()),
    ("pinned-gs-artifact", {"version": 1}, [mv(1, uri="gs://b/m")], 1,
     "ModelVersionResolved", ()),
    ("pinned-http-artifact", {"version": 1}, [mv(1, uri="https://h/m")], None,
     "ArtifactNotServable", ()),
    ("other-models-ignored", {"version": 1}, [mv(1, model="iris")], None,
     "ModelVersionNotFound", ()),
    ("tracked-highest-in-stage", {"stage": "Production"},
     [mv(1, "Production"), mv(3, "Production"), mv(4, "Staging")], 3, "ModelVersionResolved", ()),
    ("tracked-none-in-stage", {"stage": "Production"}, [mv(1, "Staging")], None,
     "NoVersionInStage", ()),
    ("tracked-newest-not-ready-waits", {"stage": "Production"},
     [mv(1, "Production"), mv(2, "Production", phase="Pending")], None,
     "ModelVersionNotReady", ()),
    ("tracked-skips-rejected", {"stage": "Production"},
     [mv(1, "Production"), mv(2, "Production", rejected_by="svc")], 1,
     "ModelVersionResolved", (2,)),
    ("tracked-skips-annotated-rejection", {"stage": "Production"},
     [mv(1, "Production"), annotated(2, "Production", "svc")], 1, "ModelVersionResolved", (2,)),
    ("tracked-retried-is-served-again", {"stage": "Production"},
     [mv(1, "Production"), annotated(2, "Production", "svc", retried=True)], 2,
     "ModelVersionResolved", ()),
    ("pinned-annotated-rejection", {"version": 2}, [annotated(2, "None", "svc")], None,
     "ModelVersionRejected", (2,)),
    ("tracked-all-rejected", {"stage": "Production"},
     [mv(2, "Production", rejected_by="svc")], None, "ModelVersionRejected", (2,)),
]  # fmt: skip


@pytest.mark.parametrize(
    ("model", "mvs", "version", "reason", "rejected"),
    [c[1:] for c in RESOLVE_CASES],
    ids=[c[0] for c in RESOLVE_CASES],
)
def test_resolve(
    model: dict[str, Any],
    mvs: list[dict[str, Any]],
    version: int | None,
    reason: str,
    rejected: tuple[int, ...],
) -> None:
    res = resolve({"name": "churn", **model}, mvs, "svc")
    assert (res.target.version if res.target else None) == version
    assert res.reason == reason and res.rejected == rejected
    assert res.message


ISVC = {
    "metadata": {"name": "svc", "namespace": "ml", "generation": 3},
    "spec": {"model": {"name": "churn", "version": 2}},
}
V1, V2 = Target("churn-v1", 1), Target("churn-v2", 2)
OK = Resolution(V2, "ModelVersionResolved", "serving churn-v2")
REJECTED = Resolution(None, "ModelVersionRejected", "rolled back", (2,))


def isvc(**status: Any) -> dict[str, Any]:
    return {**ISVC, "status": status}


def pods(desired: int, ready: int, rolled_out: bool = True) -> Pods:
    return Pods(desired, desired, ready, Track(1, desired, ready, rolled_out))


NO = None  # the condition is absent (Stalled is removed, not set False)
STATUS_CASES = [
    # id, previous status, resolution, plan, pods -> phase, {condition: (status, reason)}
    ("nothing-deployed", {}, Resolution(None, "NoVersionInStage", "none"),
     Plan(State(None), None, None, None), Pods(0, 0, 0, None), "Pending",
     {"ModelResolved": ("False", "NoVersionInStage"), "Ready": ("False", "NoVersionInStage"),
      "Stalled": NO}),
    ("pinned-version-rejected-nothing-serves", {}, REJECTED,
     Plan(State(None), None, None, None), Pods(0, 0, 0, None), "Pending",
     {"Ready": ("False", "ModelVersionRejected"), "Stalled": ("True", "ModelVersionRejected")}),
    ("first-deploy-coming-up", {"phase": "Pending"}, OK, Plan(State(V2), (V2, 2), None, None),
     pods(2, 0, rolled_out=False), "Progressing",
     {"Progressing": ("True", "Deploying"), "Ready": ("False", "Deploying"), "Stalled": NO}),
    ("ready", {"phase": "Progressing"}, OK, Plan(State(V2), (V2, 2), None, None), pods(2, 2),
     "Ready", {"Progressing": ("False", "RolloutComplete"), "Ready": ("True", "ReplicasReady"),
               "Stalled": NO}),
    ("lost-a-pod", {"phase": "Ready"}, OK, Plan(State(V2), (V2, 2), None, None),
     pods(2, 1, rolled_out=False), "Degraded",
     {"Ready": ("False", "Degraded"), "Stalled": ("True", "Degraded")}),
    ("canary-in-flight-all-pods-ready", {"phase": "Ready"}, OK,
     Plan(State(V1, InFlight(V2, 0, 25, 0.0)), (V1, 3), (V2, 1), (True, "CanaryStep", "s1")),
     pods(4, 4), "Progressing",
     {"Progressing": ("True", "CanaryStep"), "Ready": ("False", "CanaryStep"), "Stalled": NO}),
    ("rolled-back", {"phase": "Progressing", "lastRollback": {"version": 2}}, REJECTED,
     Plan(State(V1), (V1, 2), None, None), pods(2, 2), "RolledBack",
     {"ModelResolved": ("False", "ModelVersionRejected"), "Ready": ("False", "RolledBack"),
      "Stalled": ("True", "RolledBack")}),
    ("recovered-after-degraded", {"phase": "Degraded", "conditions": [
        {"type": "Stalled", "status": "True", "reason": "Degraded", "message": "",
         "lastTransitionTime": NOW, "observedGeneration": 3}]},
     OK, Plan(State(V2), (V2, 2), None, None), pods(2, 2), "Ready",
     {"Ready": ("True", "ReplicasReady"), "Stalled": NO}),
]  # fmt: skip


@pytest.mark.parametrize(
    ("previous", "res", "plan", "observed", "phase", "conds"),
    [c[1:] for c in STATUS_CASES],
    ids=[c[0] for c in STATUS_CASES],
)
def test_status(previous: dict[str, Any], res: Resolution, plan: Plan, observed: Pods,
                phase: str, conds: dict[str, tuple[str, str] | None]) -> None:  # fmt: skip
    status = inferenceservice_status(isvc(**previous), res, plan, observed, now=NOW)
    assert status["phase"] == phase
    got = {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}
    assert {t: got.get(t) for t in conds} == conds
    assert all(c["observedGeneration"] == 3 for c in status["conditions"])
    assert status["observedGeneration"] == 3
    assert status["url"] == "http://svc.ml.svc.cluster.local/v2/models/churn"
    assert status["selector"] == "perennial.dev/inferenceservice=svc"


def test_rollback_is_recorded_in_status() -> None:
    from perennial_operator.decide.rollout.machine import Rollback

    plan = Plan(
        State(V1),
        (V1, 2),
        None,
        (False, "ErrorRateExceeded", "rolled back"),
        rollback=Rollback(V2, "ErrorRateExceeded", "error rate 0.2 > 0.01"),
    )
    status = inferenceservice_status(isvc(phase="Progressing"), REJECTED, plan, pods(2, 2), now=NOW)
    assert status["lastRollback"] == {"version": 2, "reason": "ErrorRateExceeded", "time": NOW}
    assert status["phase"] == "RolledBack"
    assert status["canary"] is None  # null: removed by the merge patch


def test_rollout_state_round_trips_through_status() -> None:
    state = State(V1, InFlight(V2, 1, 50, 1_790_000_000.0))
    plan = Plan(state, (V1, 2), (V2, 2), (True, "CanaryStep", "step 2"))
    status = inferenceservice_status(isvc(), OK, plan, pods(4, 4), now=NOW)
    assert status["canary"] == {
        "version": 2,
        "modelVersion": "churn-v2",
        "step": 1,
        "weight": 50,
        "stepStartedAt": format_time(1_790_000_000.0),
    }
    assert state_from_status(status) == state
    rolling = State(V1, InFlight(V2, 0, None, 1_790_000_000.0))
    plan = Plan(rolling, (V2, 2), None, (True, "RollingUpdate", "rolling"))
    status = inferenceservice_status(isvc(), OK, plan, pods(2, 2), now=NOW)
    assert "weight" not in status["canary"] and state_from_status(status) == rolling


def test_the_step_clock_survives_a_restart() -> None:
    """servingSince is in status: a restarted operator neither resets nor skips the clock."""
    state = State(V1, InFlight(V2, 1, 50, 1_790_000_000.0, 1_790_000_042.0))
    plan = Plan(state, (V1, 2), (V2, 2), (True, "CanaryStep", "step 2"))
    status = inferenceservice_status(isvc(), OK, plan, pods(4, 4), now=NOW)
    assert status["canary"]["servingSince"] == format_time(1_790_000_042.0)
    restarted = state_from_status(status)
    assert restarted == state
    from perennial_operator.decide.rollout.machine import Observed, RolloutSpec, advance

    spec = RolloutSpec(strategy="Canary", steps=(50, 100), step_seconds=10)
    world = Observed(Track(1, 2, 2, True), Track(2, 2, 2, True), 4)
    kept = advance(spec, restarted, V2, world, 1_790_000_045.0)
    assert kept.state == state  # still counting from 1_790_000_042, not from the restart


POOL = "ComputePool gpu does not exist; the Deployments are left as they are"
HELD = Plan(State(V1), (V1, 2), None, (False, "ComputePoolNotFound", POOL))


def test_a_missing_pool_is_a_condition_and_one_warning() -> None:
    first = inferenceservice_status(isvc(phase="Ready"), OK, HELD, pods(2, 2), now=NOW)
    cond = next(c for c in first["conditions"] if c["type"] == "Progressing")
    assert (cond["status"], cond["reason"], cond["message"]) == (
        "False",
        "ComputePoolNotFound",
        POOL,
    )
    assert first["phase"] == "Ready"  # what runs still serves
    (event,) = pool_events(isvc(phase="Ready"), HELD)
    assert (event.type, event.reason, event.message) == ("Warning", "ComputePoolNotFound", POOL)
    assert pool_events(first, HELD) == []  # once per change, not per tick
    other = Plan(State(V1), (V1, 2), None, (False, "ComputePoolNotFound", "ComputePool cpu x"))
    assert [e.reason for e in pool_events(first, other)] == ["ComputePoolNotFound"]
    assert pool_events(first, Plan(State(V1), (V1, 2), None, None)) == []


def test_the_pool_condition_clears_when_the_pool_appears() -> None:
    held = inferenceservice_status(isvc(phase="Ready"), OK, HELD, pods(2, 2), now=NOW)
    back = inferenceservice_status(
        {**ISVC, "status": held}, OK, Plan(State(V1), (V1, 2), None, None), pods(2, 2), now=NOW
    )
    cond = next(c for c in back["conditions"] if c["type"] == "Progressing")
    assert (cond["status"], cond["reason"]) == ("False", "RolloutComplete")
    # Any other False reason stays as it was (a rollback's reason, say).
    rolled = {**held, "conditions": [{**cond, "reason": "ErrorRateExceeded", "message": "x"}]}
    kept = inferenceservice_status(
        {**ISVC, "status": rolled}, OK, Plan(State(V1), (V1, 2), None, None), pods(2, 2), now=NOW
    )
    assert (
        next(c for c in kept["conditions"] if c["type"] == "Progressing")["reason"]
        == "ErrorRateExceeded"
    )


def test_rollout_spec_defaults() -> None:
    spec = rollout_spec({})
    assert (spec.strategy, spec.steps, spec.step_seconds, spec.ready_deadline, spec.surge) == (
        "Rolling",
        (100,),
        60.0,
        300.0,
        True,
    )
    assert rollout_spec({"rollout": {"surge": False}}).surge is False


def deployment(replicas: int, generation: int = 2, observed: int = 2, updated: int = 2,
               total: int = 2, available: int = 2, ready: int = 2) -> dict[str, Any]:  # fmt: skip
    return {
        "metadata": {"generation": generation},
        "spec": {
            "replicas": replicas,
            "template": {"metadata": {"labels": {"perennial.dev/model-version": "4"}}},
        },
        "status": {
            "observedGeneration": observed,
            "updatedReplicas": updated,
            "replicas": total,
            "availableReplicas": available,
            "readyReplicas": ready,
        },
    }


TRACK_CASES = [
    ("rolled-out", deployment(2), Track(4, 2, 2, True)),
    ("spec-not-seen-yet", deployment(2, generation=3), Track(4, 2, 2, False)),
    ("old-pods-left", deployment(2, total=3), Track(4, 2, 2, False)),
    ("not-available", deployment(2, available=1, ready=1), Track(4, 2, 1, False)),
    (
        "scaled-to-zero",
        deployment(0, updated=0, total=0, available=0, ready=0),
        Track(4, 0, 0, True),
    ),
    ("absent", None, None),
]


@pytest.mark.parametrize(
    ("dep", "expected"), [c[1:] for c in TRACK_CASES], ids=[c[0] for c in TRACK_CASES]
)
def test_track_of(dep: dict[str, Any] | None, expected: Track | None) -> None:
    assert track_of(dep) == expected


def test_ready_pod_ips_of_one_version() -> None:
    def pod(ip: str, version: str, ready: str = "True", deleting: bool = False) -> dict[str, Any]:
        meta: dict[str, Any] = {"labels": {"perennial.dev/model-version": version}}
        if deleting:
            meta["deletionTimestamp"] = NOW
        return {
            "metadata": meta,
            "status": {"podIP": ip, "conditions": [{"type": "Ready", "status": ready}]},
        }

    found = [
        pod("10.0.0.2", "4"),
        pod("10.0.0.1", "4"),
        pod("10.0.0.3", "5"),
        pod("10.0.0.4", "4", ready="False"),
        pod("10.0.0.5", "4", deleting=True),
    ]
    assert ready_pod_ips(found, 4) == ["10.0.0.1", "10.0.0.2"]
