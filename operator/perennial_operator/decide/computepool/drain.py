"""Deleting a ComputePool: what one pass of its drain does next. Pure.

The pool's finalizer keeps it until every node of the pool is gone. Each pass: cordon every
node (nothing new lands on a pool being deleted); unless forced, stop there while a pod of an
InferenceService runs on one (serving traffic is not taken down by deleting a pool; the
person says so with the force annotation); otherwise evict every other active pod through
the Eviction API (which honours PodDisruptionBudgets), and once no node holds an active pod
other than a DaemonSet's or a static pod, hand the provider all of them. Pods already being
deleted are waited for, not evicted again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from perennial_operator.api import conditions as c
from perennial_operator.api.group import ANNOTATION_FORCE_DELETE, LABEL_INFERENCESERVICE
from perennial_operator.decide.computepool.demand import is_daemon_pod

LISTED = 5  # names in a message, then "and N more"


@dataclass(frozen=True)
class Blocker:
    inferenceservice: str  # namespace/name
    pod: str  # namespace/name
    node: str


@dataclass(frozen=True)
class DrainStep:
    cordon: tuple[str, ...]  # nodes not yet unschedulable
    evict: tuple[str, ...]  # pods (namespace/name) to evict now
    remove: tuple[str, ...]  # every node, once none holds a pod: to the provider
    blockers: tuple[Blocker, ...]  # InferenceService pods that stop the drain (unforced)
    terminating: tuple[str, ...]  # pods on the way out: waited for
    done: bool  # no node of the pool is left


def forced(pool: Mapping[str, Any]) -> bool:
    annotations = (pool.get("metadata") or {}).get("annotations") or {}
    return str(annotations.get(ANNOTATION_FORCE_DELETE, "")).lower() == "true"


def _key(pod: Mapping[str, Any]) -> str:
    meta = pod.get("metadata") or {}
    return f"{meta.get('namespace')}/{meta.get('name')}"


def _occupant(pod: Mapping[str, Any]) -> bool:
    """Keeps its node: active, and not a pod that goes with the node anyway."""
    phase = (pod.get("status") or {}).get("phase")
    return phase not in ("Succeeded", "Failed") and not is_daemon_pod(pod)


def drain_step(
    nodes: Sequence[Mapping[str, Any]], pods: Sequence[Mapping[str, Any]], *, force: bool
) -> DrainStep:
    """`nodes`: the pool's nodes; `pods`: pods on them (any phase, any namespace)."""
    names = [str(n["metadata"]["name"]) for n in nodes]
    on: dict[str, list[Mapping[str, Any]]] = {name: [] for name in names}
    for pod in pods:
        node = (pod.get("spec") or {}).get("nodeName")
        if node in on and _occupant(pod):
            on[node].append(pod)
    cordon = tuple(
        str(n["metadata"]["name"]) for n in nodes if not (n.get("spec") or {}).get("unschedulable")
    )
    blockers = tuple(
        Blocker(f"{(p['metadata'] or {}).get('namespace')}/{isvc}", _key(p), node)
        for node, held in on.items()
        for p in held
        if (isvc := ((p.get("metadata") or {}).get("labels") or {}).get(LABEL_INFERENCESERVICE))
    )
    terminating = tuple(
        _key(p) for held in on.values() for p in held if p["metadata"].get("deletionTimestamp")
    )
    if blockers and not force:
        return DrainStep(cordon, (), (), blockers, terminating, done=not names)
    evict = tuple(
        _key(p) for held in on.values() for p in held if not p["metadata"].get("deletionTimestamp")
    )
    # All at once, when every node is empty: a provider that lowers a replica count (Cluster
    # API) stays idempotent across passes while nodes it was told to remove still show.
    remove = tuple(names) if not any(on.values()) else ()
    return DrainStep(cordon, evict, remove, blockers, terminating, done=not names)


def _listing(items: Sequence[str]) -> str:
    more = f" and {len(items) - LISTED} more" if len(items) > LISTED else ""
    return ", ".join(items[:LISTED]) + more


@dataclass(frozen=True)
class DrainReport:
    reason: str  # a ComputePool reason: Draining, DeletionBlocked, EvictionRefused, ...
    message: str
    stuck: bool  # needs a person (or a budget that allows it): kstatus Stalled


def drain_report(
    pool_name: str,
    step: DrainStep,
    refused: Mapping[str, str],
    error: str | None,
    nodes_left: int,
) -> DrainReport:
    """What the pool's Ready condition says after a pass. `refused`: pod -> why its eviction
    was refused (a PodDisruptionBudget, HTTP 429); `error`: the provider or API failed."""
    if error:
        return DrainReport(c.DRAIN_FAILED, f"draining the pool's nodes failed: {error}", False)
    if step.blockers and not step.evict:
        pods = [
            f"{b.pod} of InferenceService {b.inferenceservice} on {b.node}" for b in step.blockers
        ]
        return DrainReport(
            c.DELETION_BLOCKED,
            f"deletion waits: {_listing(pods)} would stop serving. Move the InferenceService "
            f"off the pool (spec.computePool) or annotate the pool "
            f"{ANNOTATION_FORCE_DELETE}=true to evict it anyway "
            f"(kubectl annotate computepool {pool_name} {ANNOTATION_FORCE_DELETE}=true)",
            True,
        )
    if refused:
        why = [f"{pod} ({reason})" for pod, reason in sorted(refused.items())]
        return DrainReport(
            c.EVICTION_REFUSED,
            f"eviction refused for {_listing(why)}; retrying until the disruption budget allows it",
            True,
        )
    waiting = [*step.evict, *step.terminating]
    if waiting:
        return DrainReport(
            c.DRAINING,
            f"{nodes_left} node(s) left; waiting for {len(waiting)} pod(s) to leave: "
            f"{_listing(sorted(set(waiting)))}",
            False,
        )
    return DrainReport(c.DRAINING, f"{nodes_left} node(s) left", False)
