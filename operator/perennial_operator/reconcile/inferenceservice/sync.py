"""InferenceService use case: gather -> decide -> act. Called by every trigger (create,
update, resume, ModelVersion and Deployment events, the rollout and safety timers); safe to
run any number of times, from any state, after any restart.

Every read happens first (`_gather`: ModelVersions, Deployments, the ComputePool, the route,
the pods' metrics when the rollout needs them), then one pure decision (`advance`, which
returns a Plan), then every write (`_act`, then Events, then status), in an order that a
crash at any point leaves safe:
1. a rollback is recorded on the ModelVersion first (an annotation), so no restart rolls it
   out again;
2. the route's weights and role Services follow the plan before a canary Deployment goes;
3. the children (Service, HPA, Deployments);
4. Events before the status that moves past them, so a crash repeats an Event rather than
   losing it from the audit trail.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any

from perennial_operator import metrics
from perennial_operator.api import conditions as c
from perennial_operator.api.computepool import namespace_refusal
from perennial_operator.api.group import API_VERSION
from perennial_operator.api.rejections import record
from perennial_operator.api.tracks import CANARY, STABLE, TRACKS
from perennial_operator.config import OperatorConfig
from perennial_operator.decide.conditions import get_condition, set_condition
from perennial_operator.decide.events import Event
from perennial_operator.decide.monitoring.samples import of_version
from perennial_operator.decide.ownership import name_conflict
from perennial_operator.decide.rollout.analysis import request_stats, step_stats
from perennial_operator.decide.rollout.machine import (
    Observed,
    Plan,
    RolloutSpec,
    State,
    advance,
    analysis_due,
    baseline_due,
)
from perennial_operator.decide.rollout.observed import track_of
from perennial_operator.decide.rollout.resolution import Resolution, resolve
from perennial_operator.decide.rollout.status import (
    Pods,
    inferenceservice_status,
    pool_events,
    rollout_spec,
    state_from_status,
)
from perennial_operator.desired import inferenceservice as desired
from perennial_operator.desired.httproute import our_services
from perennial_operator.desired.placement import NO_POOL, Placement, pool_placement
from perennial_operator.k8s.kube import KubeApi, now_iso, now_precise, patch_changed_status
from perennial_operator.reconcile.inferenceservice import traffic
from perennial_operator.reconcile.inferenceservice.pods import counters_of, pod_urls, samples_of
from perennial_operator.reconcile.locks import KeyedLocks

log = logging.getLogger(__name__)
KIND = "InferenceService"
OUTCOMES = MappingProxyType(
    {
        "Promoted": "promoted",
        "RolledBack": "rolled_back",
        "RolledOut": "rolled_out",
        "RolloutSuperseded": "superseded",
        "RolloutAbandoned": "abandoned",
    }
)


def sync_inferenceservice(
    kube: KubeApi, namespace: str, name: str, config: OperatorConfig, locks: KeyedLocks
) -> None:
    started = time.monotonic()
    # Timers, our own update handler and child events may fire together for one service.
    with locks.hold(f"{KIND}/{namespace}/{name}"):
        isvc = kube.get(API_VERSION, KIND, namespace, name)  # fresh, under the lock
        if isvc is None or isvc["metadata"].get("deletionTimestamp"):
            return
        phase = _sync(kube, isvc, config)
    metrics.RECONCILE_SECONDS.labels(kind=KIND).observe(time.monotonic() - started)
    metrics.RECONCILES.labels(kind=KIND, outcome=phase).inc()


@dataclass(frozen=True)
class Gathered:
    """Everything one tick reads before it decides."""

    modelversions: dict[str, dict[str, Any]]  # the model's ModelVersions by name
    resolution: Resolution
    state: State
    spec: RolloutSpec
    obs: Observed
    placement: Placement | None  # None: the ComputePool named in the spec does not exist
    route: traffic.RouteView | None  # None: no spec.rollout.httpRoute


def _children(kube: KubeApi, isvc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any] | None]]:
    """Every name this service writes or deletes, with what holds it now."""
    ns, name = isvc["metadata"]["namespace"], isvc["metadata"]["name"]
    named = [("apps/v1", "Deployment", desired.deployment_name(isvc, track)) for track in TRACKS]
    named += [("v1", "Service", service) for service in our_services(isvc)]
    named.append(("autoscaling/v2", "HorizontalPodAutoscaler", name))
    return [(kind, child, kube.get(api, kind, ns, child)) for api, kind, child in named]


def _hold(kube: KubeApi, isvc: dict[str, Any], conflict: str) -> str:
    """A child's name is taken by an object this service does not own: write nothing of
    it, say why (Ready and Progressing False, reason NameConflict), keep the phase."""
    previous = isvc.get("status") or {}
    gen, stamp = int(isvc["metadata"].get("generation", 1)), now_iso()
    conds = list(previous.get("conditions") or [])
    old = get_condition(conds, c.READY)
    for type_ in (c.READY, c.PROGRESSING):
        conds = set_condition(
            conds, type_=type_, status=False, reason=c.NAME_CONFLICT, message=conflict,
            generation=gen, now=stamp,
        )  # fmt: skip
    if old is None or old.get("reason") != c.NAME_CONFLICT:
        kube.event(isvc, "Warning", c.NAME_CONFLICT, conflict)
    log.warning("%s/%s: %s", isvc["metadata"]["namespace"], isvc["metadata"]["name"], conflict)
    phase = str(previous.get("phase") or "Pending")
    patch_changed_status(kube, isvc, {"phase": phase, "conditions": conds})
    return phase


def _sync(kube: KubeApi, isvc: dict[str, Any], config: OperatorConfig) -> str:
    conflict = name_conflict(isvc, _children(kube, isvc))
    if conflict:
        return _hold(kube, isvc, conflict)
    now = time.time()
    seen = _gather(kube, isvc, config, now)
    plan = advance(seen.spec, seen.state, seen.resolution.target, seen.obs, now)
    route = _act(kube, isvc, seen, plan, config)
    stamp = now_iso()
    status = inferenceservice_status(isvc, seen.resolution, plan, _pods(seen.obs, plan), now=stamp)
    status, route_events = traffic.status(isvc, status, route, plan.state, stamp)
    for event in (*pool_events(isvc.get("status") or {}, plan), *plan.events, *route_events):
        _post(kube, isvc, event)
    patch_changed_status(kube, isvc, status)  # the drift timer writes status.drift too
    weight = (status.get("canary") or {}).get("weight") or 0
    meta = isvc["metadata"]
    metrics.CANARY_WEIGHT.labels(namespace=meta["namespace"], inferenceservice=meta["name"]).set(
        weight
    )
    return str(status["phase"])


def _gather(kube: KubeApi, isvc: dict[str, Any], config: OperatorConfig, now: float) -> Gathered:
    meta, spec = isvc["metadata"], isvc["spec"]
    mvs = [
        m
        for m in kube.list(API_VERSION, "ModelVersion", meta["namespace"])
        if m["spec"].get("model") == spec["model"]["name"]
    ]
    state, rspec = state_from_status(isvc.get("status") or {}), rollout_spec(spec)
    obs = _deployments(kube, isvc)
    placement, pool_refused = _placement(kube, isvc)
    if placement is None:
        pool = spec.get("computePool")
        why = f"ComputePool {pool} does not exist; the Deployments are left as they are"
        reason = c.COMPUTE_POOL_NOT_FOUND
        if pool_refused:
            why, reason = (
                f"{pool_refused}; the Deployments are left as they are",
                c.COMPUTE_POOL_NOT_ALLOWED,
            )
        log.warning("%s/%s: %s", meta["namespace"], meta["name"], why)
        obs = replace(obs, pool_problem=why, pool_reason=reason)
    route = traffic.observe(kube, isvc, rspec)
    if route is not None:
        problem, weight = traffic.facts(isvc, route, state)
        obs = replace(obs, route_problem=problem, route_weight=weight)
    analyse = analysis_due(rspec, state, obs, now)
    if analyse or baseline_due(rspec, state, obs, now):
        obs = _measure(kube, isvc, state, obs, config, analyse=analyse)
    return Gathered(
        modelversions={m["metadata"]["name"]: m for m in mvs},
        resolution=resolve(spec["model"], mvs, meta["name"]),
        state=state,
        spec=rspec,
        obs=obs,
        placement=placement,
        route=route,
    )


def _deployments(kube: KubeApi, isvc: dict[str, Any]) -> Observed:
    ns, spec = isvc["metadata"]["namespace"], isvc["spec"]
    stable, canary = (
        track_of(kube.get("apps/v1", "Deployment", ns, desired.deployment_name(isvc, track)))
        for track in (STABLE, CANARY)
    )
    auto = spec.get("autoscaling")
    if auto:  # the HPA owns the stable's replicas; a canary is sized against its choice
        total = stable.replicas if stable else int(auto.get("minReplicas", 1))
    else:
        total = int(spec.get("replicas", 1))
    return Observed(stable, canary, total, autoscaled=bool(auto))


def _placement(kube: KubeApi, isvc: dict[str, Any]) -> tuple[Placement | None, str | None]:
    """The pool's placement; None when the pool is missing or (with the refusal's message)
    does not admit the service's namespace."""
    pool_name = isvc["spec"].get("computePool")
    if not pool_name:
        return NO_POOL, None
    pool = kube.get(API_VERSION, "ComputePool", None, pool_name)
    if pool is None:
        return None, None
    refused = namespace_refusal(pool, isvc["metadata"]["namespace"])
    return (None, refused) if refused else (pool_placement(pool), None)


def _measure(
    kube: KubeApi,
    isvc: dict[str, Any],
    state: State,
    obs: Observed,
    config: OperatorConfig,
    *,
    analyse: bool,
) -> Observed:
    """Scrape the canary pods' counters (for a baseline, and for the step's analysis) and,
    when `analyse`, the stable's totals (shown in Events for comparison)."""
    ns, name = isvc["metadata"]["namespace"], isvc["metadata"]["name"]
    flight = state.rollout
    assert flight is not None and state.current is not None
    selector = desired.selector(isvc, CANARY)
    pods, asked = counters_of(kube, ns, selector, flight.target.version, config)
    if len(pods) < asked:
        log.warning(
            "%s/%s: %d of %d canary pods did not answer /metrics",
            ns,
            name,
            asked - len(pods),
            asked,
        )
    obs = replace(obs, canary_pods=tuple(pods))
    if not analyse:
        return obs
    urls = pod_urls(kube, ns, desired.selector(isvc, STABLE), state.current.version, config)
    samples, answered = samples_of(urls)
    if answered < len(urls):
        log.warning(
            "%s/%s: %d of %d stable pods did not answer /metrics",
            ns,
            name,
            len(urls) - answered,
            len(urls),
        )
    stable = request_stats(of_version(samples, state.current.version))
    return replace(obs, canary_stats=step_stats(pods, flight.baseline), stable_stats=stable)


def _act(
    kube: KubeApi, isvc: dict[str, Any], seen: Gathered, plan: Plan, config: OperatorConfig
) -> traffic.RouteView | None:
    """Every write the plan asks for but its Events and status; returns the route as written."""
    if plan.rollback is not None:
        _reject(kube, seen.modelversions.get(plan.rollback.target.name), isvc, plan)
    route = seen.route
    if route is not None:
        route = traffic.steer(kube, isvc, route, seen.spec, plan.state, seen.obs)
    else:
        traffic.drop_services(kube, isvc)
    _apply_children(kube, isvc, plan, seen, config)
    return route


def _post(kube: KubeApi, isvc: dict[str, Any], event: Event) -> None:
    kube.event(isvc, event.type, event.reason, event.message)
    if event.reason in OUTCOMES:
        meta = isvc["metadata"]
        metrics.ROLLOUTS.labels(
            namespace=meta["namespace"],
            inferenceservice=meta["name"],
            outcome=OUTCOMES[event.reason],
        ).inc()


def _apply_children(
    kube: KubeApi, isvc: dict[str, Any], plan: Plan, seen: Gathered, config: OperatorConfig
) -> None:
    ns, name = isvc["metadata"]["namespace"], isvc["metadata"]["name"]
    kube.apply(desired.service(isvc))
    hpa = desired.hpa(isvc)
    if hpa is not None:
        kube.apply(hpa)
    elif kube.get("autoscaling/v2", "HorizontalPodAutoscaler", ns, name):
        kube.delete("autoscaling/v2", "HorizontalPodAutoscaler", ns, name)
    if seen.placement is None:  # no usable pool: Progressing=False, ComputePoolNotFound|NotAllowed
        return
    obs = seen.obs
    tracks = ((STABLE, plan.stable, obs.stable), (CANARY, plan.canary, obs.canary))
    for track, want, running in tracks:
        mv = seen.modelversions.get(want[0].name) if want else None
        if want is not None and mv is not None:  # a deleted ModelVersion: keep what runs
            kube.apply(desired.deployment(isvc, track, mv, want[1], config, seen.placement))
        elif want is None and running is not None:
            kube.delete("apps/v1", "Deployment", ns, desired.deployment_name(isvc, track))


def _pods(obs: Observed, plan: Plan) -> Pods:
    stable_wanted = plan.stable[1] if plan.stable else 0
    if stable_wanted is None:  # the HPA decides
        stable_wanted = obs.stable.replicas if obs.stable else 0
    canary_wanted = plan.canary[1] if plan.canary else 0
    tracks = [t for t in (obs.stable, obs.canary) if t is not None]
    return Pods(
        desired=stable_wanted + canary_wanted,
        existing=sum(t.replicas for t in tracks),
        ready=sum(t.ready for t in tracks),
        stable=obs.stable,
    )


def _reject(kube: KubeApi, mv: dict[str, Any] | None, isvc: dict[str, Any], plan: Plan) -> None:
    """Record the rollback on the ModelVersion (an annotation: backups and GitOps keep it),
    so resolution skips it until a user retries it."""
    rollback, service = plan.rollback, isvc["metadata"]["name"]
    if mv is None or rollback is None:
        return
    meta = mv["metadata"]
    note = record(service, rollback.reason, rollback.message, now_precise())
    kube.patch(
        API_VERSION,
        "ModelVersion",
        meta["namespace"],
        meta["name"],
        {"metadata": {"annotations": note}},
    )
    kube.event(
        mv,
        "Warning",
        "Rejected",
        f"rolled back by InferenceService {service}: {rollback.reason}; "
        f"`perennial retry {service} {meta['name']}` tries it again",
    )
