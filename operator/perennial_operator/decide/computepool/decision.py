"""The ComputePool scaling decision: a pure function of (pool, its nodes, pods, clock).

Rules, in order:
1. Demand is every pod that selects the pool and that the scheduler marked Unschedulable.
2. A pod larger than one empty node of the pool's shape is unfittable: reported, never
   scaled for.
3. The rest are packed first-fit-decreasing (cpu, memory, nvidia.com/gpu, pod slots) into
   the free room of the pool's usable nodes, then of nodes the provider is still bringing
   up, then of new nodes, up to maxNodes; what is left is overflow, reported.
4. desired = max(minNodes, current + new nodes).
5. Scale-down only when nothing is added: a node with no active non-DaemonSet pod (and no
   pending pod packed onto it) is idle since the time it was first seen idle (kept in a
   node annotation, so restarts keep the clock); once idle for scaleDownDelaySeconds it is
   removed, oldest-idle first, never below max(minNodes, desired). Nodes with pods are
   never removed, so PodDisruptionBudgets are never put to the test.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from perennial_operator.api.computepool import pool_shape
from perennial_operator.api.group import ANNOTATION_CORDONED_FOR_REMOVAL, ANNOTATION_IDLE_SINCE
from perennial_operator.api.timestamps import format_precise, parse_time
from perennial_operator.decide.computepool.binpack import (
    Item,
    Resources,
    first_fit_decreasing,
    total,
)
from perennial_operator.decide.computepool.demand import (
    PodView,
    pod_view,
    selects_pool,
    unschedulable_since,
)


@dataclass(frozen=True)
class NodeView:
    name: str
    ready: bool
    cordoned: bool
    cordoned_by_us: bool
    deleting: bool
    allocatable: Resources
    idle_since: str | None


def node_view(node: Mapping[str, Any]) -> NodeView:
    meta, status = node.get("metadata") or {}, node.get("status") or {}
    annotations = meta.get("annotations") or {}
    ready = any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in status.get("conditions") or []
    )
    return NodeView(
        name=str(meta.get("name")),
        ready=ready,
        cordoned=bool((node.get("spec") or {}).get("unschedulable")),
        cordoned_by_us=ANNOTATION_CORDONED_FOR_REMOVAL in annotations,
        deleting=bool(meta.get("deletionTimestamp")),
        allocatable=Resources.of(status.get("allocatable") or status.get("capacity") or {}),
        idle_since=annotations.get(ANNOTATION_IDLE_SINCE),
    )


@dataclass(frozen=True)
class World:
    nodes: Sequence[Mapping[str, Any]]  # the pool's own nodes only
    pods: Sequence[Mapping[str, Any]]  # active pods: pending ones and those bound to nodes
    target: int  # what the provider was last asked for (kwok: its nodes; CAPI: replicas)
    now: dt.datetime


@dataclass(frozen=True)
class Unfit:
    pod: str
    resources: tuple[str, ...]  # what the pod asks more of than one node has


@dataclass(frozen=True)
class Decision:
    current: int
    desired: int
    add: int
    remove: tuple[str, ...] = ()
    uncordon: tuple[str, ...] = ()
    idle_marks: Mapping[str, str | None] = field(default_factory=dict)
    pending: tuple[str, ...] = ()
    unfittable: tuple[Unfit, ...] = ()
    overflow: tuple[str, ...] = ()
    waited_since: tuple[str, ...] = ()  # unschedulable-since of pods that new nodes are for
    reason: str = ""
    recheck_after: float | None = None  # seconds until the next idle node may go


def _free_room(nodes: Sequence[NodeView], pods: Sequence[PodView]) -> list[Resources]:
    used: dict[str, list[Resources]] = {}
    for pod in pods:
        if pod.node_name and pod.active:
            used.setdefault(pod.node_name, []).append(pod.requests)
    return [n.allocatable - total(used.get(n.name, [])) for n in nodes]


def _staying(nodes: list[NodeView], target: int) -> list[NodeView]:
    """Leave out nodes already handed to the provider for removal: more nodes than the
    target means the provider is still taking some away, and those are the ones we
    cordoned (a Cluster API Machine outlives the replicas patch by a while)."""
    surplus = max(0, len(nodes) - target)
    leaving = set(sorted(n.name for n in nodes if n.cordoned_by_us)[:surplus])
    return [n for n in nodes if n.name not in leaving]


def computepool_decision(pool: dict[str, Any], world: World) -> Decision:
    spec = pool["spec"]
    low, high = int(spec.get("minNodes", 0)), int(spec["maxNodes"])
    shape = Resources.of(pool_shape(pool))
    nodes = _staying([v for v in map(node_view, world.nodes) if not v.deleting], world.target)
    views = [pod_view(p) for p in world.pods]
    pending = [
        pod_view(p)
        for p in world.pods
        if unschedulable_since(p) is not None and selects_pool(p, pool)
    ]
    # Nodes a human cordoned take no pods; ours (about to go) may be taken back if needed.
    usable = [n for n in nodes if not n.cordoned or n.cordoned_by_us]
    booting = max(0, world.target - len(nodes))  # machines asked for, not yet registered
    room = _free_room(usable, views) + [shape] * booting
    current = world.target
    packing = first_fit_decreasing(
        [Item(p.key, p.requests) for p in pending], room, shape, max(0, high - current)
    )
    desired = max(low, current + packing.new_bins)
    unfit = tuple(
        Unfit(p.key, tuple(p.requests.exceeding(shape)))
        for p in pending
        if p.key in set(packing.too_big)
    )
    onto_new = [p for p in pending if packing.placed.get(p.key, -1) >= len(room)]
    base = Decision(
        current=current,
        desired=desired,
        add=max(0, desired - current),
        pending=tuple(sorted(p.key for p in pending)),
        unfittable=unfit,
        overflow=tuple(sorted(packing.unplaced)),
        waited_since=tuple(sorted(s for p in onto_new if (s := p.unschedulable_since))),
        reason=_up_reason(len(onto_new), packing.new_bins, low, current),
    )
    landing = {usable[i].name for i in packing.placed.values() if i < len(usable)}
    return _scale_down(pool, base, nodes, views, landing, world.now)


def _up_reason(pods: int, new_bins: int, low: int, current: int) -> str:
    if new_bins:
        return f"{pods} unschedulable pod(s) need {new_bins} more node(s)"
    return f"minNodes is {low}" if current < low else ""


def _scale_down(
    pool: dict[str, Any],
    base: Decision,
    nodes: Sequence[NodeView],
    pods: Sequence[PodView],
    landing: set[str],
    now: dt.datetime,
) -> Decision:
    delay = int(pool["spec"].get("scaleDownDelaySeconds", 300))
    busy = {p.node_name for p in pods if p.node_name and p.active and not p.daemon} | landing
    marks: dict[str, str | None] = {}
    ripe: list[tuple[dt.datetime, str]] = []
    waits: list[float] = []
    for node in nodes:
        if node.name in busy:
            if node.idle_since is not None:
                marks[node.name] = None
            continue
        since = parse_time(node.idle_since)  # None for a hand-edited one: the clock restarts
        if since is None:
            # Microseconds: a short scaleDownDelaySeconds must not lose a second to rounding.
            marks[node.name], since = format_precise(now), now
        left = delay - (now - since).total_seconds()
        if node.cordoned and not node.cordoned_by_us:
            continue  # a human's cordon: their node to deal with
        if left <= 0:
            ripe.append((since, node.name))
        else:
            waits.append(left)
    # Idle nodes carry no pods and none are packed onto them, so only minNodes bounds this.
    room = 0 if base.add else max(0, base.current - int(pool["spec"].get("minNodes", 0)))
    remove = tuple(name for _, name in sorted(ripe)[:room])
    return replace(
        base,
        desired=base.desired - len(remove),
        remove=remove,
        uncordon=tuple(sorted(n.name for n in nodes if n.cordoned_by_us and n.name not in remove)),
        idle_marks=marks,
        recheck_after=min(waits) if waits else None,
        reason=f"{len(remove)} node(s) idle for {delay}s" if remove else base.reason,
    )
