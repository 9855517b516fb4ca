"""ComputePool use case: gather -> decide -> act. Run by the pool's loop (handlers/), once
per wake-up; safe to run any number of times, since every input is re-read each time."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from kubernetes.client.exceptions import ApiException

from perennial_operator import metrics
from perennial_operator.api.group import (
    ANNOTATION_CORDONED_FOR_REMOVAL,
    ANNOTATION_IDLE_SINCE,
    API_VERSION,
    LABEL_COMPUTEPOOL,
)
from perennial_operator.api.timestamps import format_time, parse_time
from perennial_operator.decide.computepool.decision import (
    Decision,
    World,
    computepool_decision,
)
from perennial_operator.decide.computepool.demand import pod_view
from perennial_operator.decide.computepool.status import Outcome, computepool_status
from perennial_operator.k8s.kube import KubeApi
from perennial_operator.providers import NodeProvider, ProviderError, provider_for

log = logging.getLogger(__name__)
ACTIVE_PODS: Final = "status.phase!=Succeeded,status.phase!=Failed"


@dataclass(frozen=True)
class Sync:
    recheck_after: float | None  # seconds until something is due; None: the usual resync
    nodes: tuple[str, ...]  # the pool's nodes, so pod events on them can wake the pool
    failed: bool  # the provider failed: the loop backs off


# A pool's loop without node (or Cluster API) permissions: the install lacks the provider's
# RBAC component, which only an administrator can add.
FORBIDDEN_HINT: Final = (
    "the operator's ServiceAccount may not do this: install the provider's RBAC component "
    "(manifests/components/computepool-kwok or computepool-clusterapi; docs/install.md)"
)


def describe(exc: BaseException) -> str:
    if isinstance(exc, ApiException):
        text = f"HTTP {exc.status} {exc.reason}: {str(exc.body or '')[:500]}".strip()
        return f"{text}; {FORBIDDEN_HINT}" if exc.status == 403 else text
    return str(exc) or type(exc).__name__


def cordon(kube: KubeApi, name: str, on: bool, now: dt.datetime) -> None:
    """Mark a node (un)schedulable, and that we did it (not a person): scale-down and the
    deletion drain."""
    stamp = format_time(now) if on else None
    patch = {
        "spec": {"unschedulable": True if on else None},
        "metadata": {"annotations": {ANNOTATION_CORDONED_FOR_REMOVAL: stamp}},
    }
    kube.patch("v1", "Node", None, name, patch)


def _still_empty(kube: KubeApi, name: str) -> bool:
    """Re-checked after the cordon: a pod the scheduler bound meanwhile keeps the node."""
    pods = kube.list("v1", "Pod", None, field_selector=f"spec.nodeName={name},{ACTIVE_PODS}")
    return not any(not v.daemon for v in map(pod_view, pods))


def _remove(
    kube: KubeApi, provider: NodeProvider, nodes: Sequence[dict[str, Any]], now: dt.datetime
) -> tuple[str, ...]:
    empty = []
    for node in nodes:
        name = node["metadata"]["name"]
        cordon(kube, name, True, now)
        if _still_empty(kube, name):
            empty.append(node)
        else:
            cordon(kube, name, False, now)
    if empty:
        provider.delete_nodes(empty)
    return tuple(n["metadata"]["name"] for n in empty)


def _act(
    kube: KubeApi,
    provider: NodeProvider,
    decision: Decision,
    nodes: Sequence[dict[str, Any]],
    now: dt.datetime,
) -> Outcome:
    for name, since in decision.idle_marks.items():
        mark = {"metadata": {"annotations": {ANNOTATION_IDLE_SINCE: since}}}
        kube.patch("v1", "Node", None, name, mark)
    for name in decision.uncordon:
        cordon(kube, name, False, now)
    added = 0
    removed: tuple[str, ...] = ()
    try:
        if decision.add:
            provider.increase_size(decision.add)
            added = decision.add
        if decision.remove:
            chosen = [n for n in nodes if n["metadata"]["name"] in decision.remove]
            removed = _remove(kube, provider, chosen, now)
    except (ProviderError, ApiException) as exc:
        return Outcome(added, removed, error=describe(exc))
    return Outcome(added, removed)


def _gather(
    kube: KubeApi, pool: dict[str, Any]
) -> tuple[NodeProvider | None, list[dict[str, Any]], int, str | None]:
    try:
        selector = f"{LABEL_COMPUTEPOOL}={pool['metadata']['name']}"
        nodes = kube.list("v1", "Node", None, selector)
        provider = provider_for(kube, pool, nodes)
        owned = [n for n in nodes if provider.owns(n)]
        return provider, owned, provider.target_size(), None
    except (ProviderError, ApiException) as exc:
        return None, [], 0, describe(exc)


def sync_computepool(kube: KubeApi, name: str) -> Sync | None:
    pool = kube.get(API_VERSION, "ComputePool", None, name)
    if pool is None or pool["metadata"].get("deletionTimestamp"):
        return None
    provider, owned, target, error = _gather(kube, pool)
    try:
        pods = kube.list("v1", "Pod", None, field_selector=ACTIVE_PODS)
    except ApiException as exc:
        if exc.status != 403:
            raise  # an outage: the loop backs off and tries again
        pods, provider, error = [], None, error or describe(exc)
    now = dt.datetime.now(dt.UTC)
    world = World(nodes=owned, pods=pods, target=target, now=now)
    decision = computepool_decision(pool, world)
    if provider is None:
        outcome = Outcome(error=error)
    else:
        outcome = _act(kube, provider, decision, owned, now)
    status, events = computepool_status(pool, world, decision, outcome, now=now)
    old = pool.get("status") or {}
    if any(old.get(key) != value for key, value in status.items()):
        kube.patch_status(API_VERSION, "ComputePool", None, name, status)
    for event in events:
        kube.event(pool, event.type, event.reason, event.message)
    _record(name, decision, outcome, status, now)
    metrics.COMPUTEPOOL_MAX_NODES.labels(pool=name).set(int(pool["spec"]["maxNodes"]))
    return Sync(
        recheck_after=_recheck(decision, outcome, status),
        nodes=tuple(n["metadata"]["name"] for n in owned),
        failed=outcome.error is not None,
    )


def _recheck(decision: Decision, outcome: Outcome, status: dict[str, Any]) -> float | None:
    """Look again soon while things move, so status catches up without a pod event; nodes
    that take minutes to boot (Cluster API) are polled gently, not every second."""
    landing = len(decision.pending) - len(decision.overflow) - len(decision.unfittable)
    if outcome.added or outcome.removed:
        return 1.0
    if landing > 0:
        return 2.0
    if status["readyNodes"] != status["desiredNodes"]:
        return 5.0
    return decision.recheck_after


def _record(
    name: str, decision: Decision, outcome: Outcome, status: dict[str, Any], now: dt.datetime
) -> None:
    for state, key in (
        ("registered", "nodes"),
        ("ready", "readyNodes"),
        ("desired", "desiredNodes"),
    ):
        metrics.COMPUTEPOOL_NODES.labels(pool=name, state=state).set(status[key])
    metrics.COMPUTEPOOL_PENDING_PODS.labels(pool=name).set(status["pendingPods"])
    ok = "error" if outcome.error else "ok"
    if decision.add:
        metrics.COMPUTEPOOL_SCALE_ACTIONS.labels(pool=name, direction="up", outcome=ok).inc()
    if decision.remove:
        metrics.COMPUTEPOOL_SCALE_ACTIONS.labels(pool=name, direction="down", outcome=ok).inc()
    if outcome.added:
        for since in decision.waited_since:
            when = parse_time(since)
            if when is not None:
                waited = (now - when).total_seconds()
                metrics.COMPUTEPOOL_DECISION_SECONDS.labels(pool=name).observe(max(0.0, waited))
        log.info("pool %s: %s", name, decision.reason)
