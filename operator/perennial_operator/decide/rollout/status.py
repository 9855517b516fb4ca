"""InferenceService status: the rollout state in and out of status, phase and conditions.

Pure: the caller passes the resolution, the rollout plan, what the Deployments show, and
the time.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from perennial_operator.api import conditions as c
from perennial_operator.api.group import LABEL_INFERENCESERVICE
from perennial_operator.api.timestamps import epoch, format_time
from perennial_operator.decide.conditions import Condition, get_condition, set_condition
from perennial_operator.decide.events import Event
from perennial_operator.decide.kstatus import Health, with_health
from perennial_operator.decide.rollout.analysis import PodCounters
from perennial_operator.decide.rollout.machine import InFlight, Plan, RolloutSpec, State, Track
from perennial_operator.decide.rollout.resolution import Resolution, Target

# The ComputePool named in the spec cannot be used: missing, or not for this namespace.
POOL_REASONS = frozenset({c.COMPUTE_POOL_NOT_FOUND, c.COMPUTE_POOL_NOT_ALLOWED})

SETTLED_PHASES = ("Ready", "Degraded", "RolledBack")


def rollout_spec(spec: Mapping[str, Any]) -> RolloutSpec:
    r = spec.get("rollout") or {}
    return RolloutSpec(
        strategy=str(r.get("strategy", "Rolling")),
        steps=tuple(int(s) for s in r.get("steps") or ()) or (100,),
        step_seconds=float(r.get("stepSeconds", 60)),
        max_error_rate=float(r.get("maxErrorRate", 0.01)),
        max_p99_ms=float(r.get("maxP99LatencyMs", 250)),
        ready_deadline=float(r.get("readyDeadlineSeconds", 300)),
        http_route=(r.get("httpRoute") or {}).get("name") or None,
        surge=bool(r.get("surge", True)),
    )


def state_from_status(status: Mapping[str, Any]) -> State:
    current = None
    if status.get("currentModelVersion") and status.get("currentVersion") is not None:
        current = Target(str(status["currentModelVersion"]), int(status["currentVersion"]))
    canary = status.get("canary") or {}
    flight = None
    if canary.get("modelVersion") and canary.get("version") is not None:
        weight = canary.get("weight")
        serving = canary.get("servingSince")
        flight = InFlight(
            Target(str(canary["modelVersion"]), int(canary["version"])),
            int(canary.get("step", 0)),
            None if weight is None else int(weight),
            epoch(canary.get("stepStartedAt")),
            epoch(serving) if serving else None,
            _baseline_from(canary.get("baseline")),
        )
    return State(current, flight)


def _le(bound: float) -> str:
    return "+Inf" if bound == math.inf else repr(bound)


def _baseline_fields(baseline: tuple[PodCounters, ...]) -> list[dict[str, Any]]:
    """status.canary.baseline: per canary pod, whole counts (they are counters)."""
    return [
        {
            "pod": p.pod,
            "restarts": p.restarts,
            "requests": round(p.requests),
            "errors": round(p.errors),
            "buckets": {_le(le): round(count) for le, count in p.buckets},
        }
        for p in baseline
    ]


def _baseline_from(raw: Any) -> tuple[PodCounters, ...] | None:
    if raw is None:
        return None
    return tuple(
        PodCounters(
            str(p["pod"]),
            int(p.get("restarts", 0)),
            float(p.get("requests", 0)),
            float(p.get("errors", 0)),
            tuple(sorted((float(le), float(n)) for le, n in (p.get("buckets") or {}).items())),
        )
        for p in raw
    )


def _state_fields(state: State) -> dict[str, Any]:
    fields: dict[str, Any] = {"canary": None}  # null removes it in a merge patch
    if state.current is not None:
        fields["currentVersion"] = state.current.version
        fields["currentModelVersion"] = state.current.name
    flight = state.rollout
    if flight is not None:
        canary: dict[str, Any] = {
            "version": flight.target.version,
            "modelVersion": flight.target.name,
            "step": flight.step,
            "stepStartedAt": format_time(flight.started),
        }
        if flight.weight is not None:
            canary["weight"] = flight.weight
        if flight.serving_since is not None:
            canary["servingSince"] = format_time(flight.serving_since)
        if flight.baseline is not None:
            canary["baseline"] = _baseline_fields(flight.baseline)
        fields["canary"] = canary
    return fields


def _removing(previous: Any, canary: Any) -> Any:
    """status.canary for a merge patch: a field the previous status had and this one lacks
    becomes null, so the patch removes it (a merge patch keeps what it does not name)."""
    if not isinstance(previous, Mapping) or not isinstance(canary, dict):
        return canary
    gone = {k: None for k in previous if k not in canary}
    return {**canary, **gone} if gone else canary


@dataclass(frozen=True)
class Pods:
    """What the Deployments show, summed over stable and canary."""

    desired: int
    existing: int
    ready: int
    stable: Track | None


def _phase(
    previous: str | None,
    state: State,
    plan: Plan,
    res: Resolution,
    pods: Pods,
    last_rollback: Mapping[str, Any] | None,
) -> str:
    if state.current is None:
        return "Pending"
    if state.rollout is not None or (plan.progressing is not None and plan.progressing[0]):
        return "Progressing"
    if last_rollback and int(last_rollback.get("version", -1)) in res.rejected:
        return "RolledBack"
    if pods.ready >= pods.desired:
        return "Ready"
    stable = pods.stable
    rolling = stable is None or not stable.rolled_out
    return "Progressing" if rolling and previous not in SETTLED_PHASES else "Degraded"


def _progressing(
    conds: list[Condition], plan: Plan, phase: str, pods: Pods, gen: int, now: str
) -> list[Condition]:
    if plan.progressing is not None:
        status, reason, message = plan.progressing
    elif phase == "Progressing":  # no rollout, but the Deployment is still coming up
        status, reason, message = True, c.DEPLOYING, f"{pods.ready}/{pods.desired} replicas ready"
    else:
        old = get_condition(conds, c.PROGRESSING)
        stuck = old is not None and old.get("reason") in POOL_REASONS
        if old is not None and old.get("status") == "False" and not stuck:
            return conds
        status, reason, message = False, c.ROLLOUT_COMPLETE, "no rollout in progress"
    return set_condition(
        conds,
        type_=c.PROGRESSING,
        status=status,
        reason=reason,
        message=message,
        generation=gen,
        now=now,
    )


def pool_events(previous: Mapping[str, Any], plan: Plan) -> list[Event]:
    """A Warning when the ComputePool goes missing (or another one is missing now): once per
    change, not on every tick. `previous` is the status before this tick."""
    if plan.progressing is None or plan.progressing[1] not in POOL_REASONS:
        return []
    old = get_condition(previous.get("conditions") or [], c.PROGRESSING)
    reason, message = plan.progressing[1], plan.progressing[2]
    if old is not None and old.get("reason") == reason and old.get("message") == message:
        return []
    return [Event("Warning", reason, message)]


STUCK_RESOLUTIONS = (c.MODELVERSION_REJECTED, c.ARTIFACT_NOT_SERVABLE)


def service_health(
    phase: str,
    state: State,
    res: Resolution,
    pods: Pods,
    conds: list[Condition],
    last_rollback: Mapping[str, Any] | None,
) -> Health:
    """Ready only when it serves what the spec asks for with every replica ready: not during
    a rollout, not after a rollback. RolledBack and Degraded need a person (Stalled)."""
    replicas = f"{pods.ready}/{pods.desired} replicas ready"
    if phase == "Ready":
        return Health(True, c.REPLICAS_READY, replicas)
    if phase == "RolledBack":
        rollback = last_rollback or {}
        serving = state.current.name if state.current else "nothing"
        return Health.stuck(
            c.ROLLED_BACK,
            f"version {rollback.get('version')} was rolled back ({rollback.get('reason')}); "
            f"serving {serving}; `perennial retry` clears the rejection to try it again",
        )
    if phase == "Degraded":
        return Health.stuck(c.DEGRADED, f"{replicas} after the rollout finished")
    if state.current is None:
        if res.target is None and res.reason in STUCK_RESOLUTIONS:
            return Health.stuck(res.reason, res.message)
        if res.target is None:
            return Health(False, res.reason, res.message)
        return Health(False, c.NOTHING_TO_SERVE, f"deploying {res.target.name}: {replicas}")
    progressing = get_condition(conds, c.PROGRESSING) or {}
    return Health(
        False, str(progressing.get("reason") or c.DEPLOYING), str(progressing.get("message"))
    )


def inferenceservice_status(
    isvc: Mapping[str, Any], res: Resolution, plan: Plan, pods: Pods, *, now: str
) -> dict[str, Any]:
    meta, spec = isvc["metadata"], isvc["spec"]
    previous = dict(isvc.get("status") or {})
    gen = int(meta.get("generation", 1))
    conds = set_condition(
        previous.get("conditions") or [],
        type_=c.MODEL_RESOLVED,
        status=res.target is not None,
        reason=res.reason,
        message=res.message,
        generation=gen,
        now=now,
    )
    last_rollback = previous.get("lastRollback")
    if plan.rollback is not None:
        last_rollback = {
            "version": plan.rollback.target.version,
            "reason": plan.rollback.reason,
            "time": now,
        }
    phase = _phase(previous.get("phase"), plan.state, plan, res, pods, last_rollback)
    conds = _progressing(conds, plan, phase, pods, gen, now)
    health = service_health(phase, plan.state, res, pods, conds, last_rollback)
    conds = with_health(conds, health, generation=gen, now=now)
    status: dict[str, Any] = {
        **previous,
        **_state_fields(plan.state),
        "phase": phase,
        "observedGeneration": gen,
        "conditions": conds,
        "url": f"http://{meta['name']}.{meta['namespace']}.svc.cluster.local"
        f"/v2/models/{spec['model']['name']}",
        "replicas": pods.existing,
        "readyReplicas": pods.ready,
        "selector": f"{LABEL_INFERENCESERVICE}={meta['name']}",
    }
    status["canary"] = _removing(previous.get("canary"), status["canary"])
    if last_rollback:
        status["lastRollback"] = last_rollback
    return status
