"""ComputePool status and Events from a decision and what acting on it did. Pure."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from perennial_operator.api import conditions as c
from perennial_operator.api.computepool import pool_shape
from perennial_operator.api.timestamps import format_precise, format_time
from perennial_operator.decide.computepool.decision import Decision, World, node_view
from perennial_operator.decide.conditions import Condition, get_condition, set_condition
from perennial_operator.decide.events import Event
from perennial_operator.decide.kstatus import Health, with_health

MAX_LISTED = 64  # status.unfittablePods maxItems


@dataclass(frozen=True)
class Outcome:
    """What the reconcile managed to do with a Decision."""

    added: int = 0
    removed: tuple[str, ...] = ()
    error: str | None = None


def _listing(keys: tuple[str, ...] | list[str], limit: int = 5) -> str:
    more = f" and {len(keys) - limit} more" if len(keys) > limit else ""
    return ", ".join(keys[:limit]) + more


def _conditions(
    pool: dict[str, Any], ready: tuple[bool, str, str], d: Decision, out: Outcome, now: str
) -> list[Condition]:
    gen = int(pool["metadata"].get("generation", 1))
    conds: list[Condition] = list((pool.get("status") or {}).get("conditions") or [])
    shape = ", ".join(f"{k} {v}" for k, v in pool_shape(pool).items())
    fit_msg = "; ".join(
        f"{u.pod} needs more {', '.join(u.resources)} than one node has ({shape})"
        for u in d.unfittable[:10]
    )
    over_msg = (
        f"{len(d.overflow)} pending pod(s) do not fit: the pool is at maxNodes "
        f"{pool['spec']['maxNodes']} ({_listing(d.overflow)})"
    )
    for type_, ok, good, bad, message in (
        (c.PROVIDER_READY, out.error is None, c.PROVIDER_OK, c.PROVIDER_ERROR, out.error or ""),
        (c.PODS_FIT, not d.unfittable, c.ALL_PODS_FIT, c.POD_TOO_LARGE, fit_msg),
        (c.CAPACITY_AVAILABLE, not d.overflow, c.WITHIN_MAX_NODES, c.MAX_NODES_REACHED,
         over_msg if d.overflow else ""),
    ):  # fmt: skip
        conds = set_condition(conds, type_=type_, status=ok, reason=good if ok else bad,
                              message="" if ok else message, generation=gen, now=now)  # fmt: skip
    return with_health(conds, pool_health(conds, ready), generation=gen, now=now)


STALLING = (c.PROVIDER_READY, c.PODS_FIT, c.CAPACITY_AVAILABLE)


def pool_health(conds: list[Condition], ready: tuple[bool, str, str]) -> Health:
    """Stalled while its provider fails, a pod fits none of its nodes, or it is at maxNodes
    with pods waiting: each needs a change (of the provider, the pod or spec.maxNodes)."""
    for type_ in STALLING:
        cond = get_condition(conds, type_) or {}
        if cond.get("status") == "False":
            return Health.stuck(str(cond.get("reason")), str(cond.get("message") or ""))
    return Health(*ready)


def _readiness(nodes: int, ready: int, d: Decision, out: Outcome) -> tuple[bool, str, str]:
    if out.error:
        return False, c.PROVIDER_ERROR, out.error
    if out.added or d.desired > nodes:
        return False, c.SCALING_UP, f"{nodes} of {d.desired} node(s) registered"
    if out.removed:
        return False, c.SCALING_DOWN, f"removing {_listing(list(out.removed))}"
    if ready < nodes:
        return False, c.SCALING_UP, f"waiting for {nodes - ready} node(s) to become Ready"
    return True, c.AT_DESIRED_SIZE, f"{nodes} node(s)"


def _events(pool: dict[str, Any], d: Decision, out: Outcome, conds: list[Condition]) -> list[Event]:
    previous = pool.get("status") or {}
    before: list[Condition] = list(previous.get("conditions") or [])
    events: list[Event] = []
    if out.added:
        events.append(
            Event(
                "Normal",
                c.SCALED_UP,
                f"scaled up from {d.current} to {d.current + out.added} node(s): {d.reason}",
            )
        )
    if out.removed:
        events.append(
            Event(
                "Normal",
                c.SCALED_DOWN,
                f"scaled down from {d.current} to "
                f"{d.current - len(out.removed)} node(s): removed "
                f"{_listing(list(out.removed))} ({d.reason})",
            )
        )
    known = set(previous.get("unfittablePods") or [])
    shape = pool_shape(pool)
    for unfit in d.unfittable:
        if unfit.pod not in known:
            have = ", ".join(f"{r} {shape.get(r, '0')}" for r in unfit.resources)
            events.append(
                Event(
                    "Warning",
                    c.POD_TOO_LARGE,
                    f"pod {unfit.pod} requests more "
                    f"{', '.join(unfit.resources)} than one node has ({have}); "
                    "not scaling for it",
                )
            )
    # MaxNodesReached once when the pool fills up (which pod is left over may change);
    # ProviderError again whenever the error itself changes.
    watched = (
        (c.CAPACITY_AVAILABLE, c.MAX_NODES_REACHED, ("reason",)),
        (c.PROVIDER_READY, c.PROVIDER_ERROR, ("reason", "message")),
    )
    for type_, reason, keys in watched:
        old, new = get_condition(before, type_) or {}, get_condition(conds, type_) or {}
        fresh = any(old.get(k) != new.get(k) for k in keys)
        if new.get("reason") == reason and fresh:
            events.append(Event("Warning", reason, str(new["message"])))
    return events


def _scale(now: dt.datetime, before: int, after: int, reason: str) -> dict[str, Any]:
    # Microseconds: scale decisions are compared with sub-second latencies.
    return {"time": format_precise(now), "from": before, "to": after, "reason": reason[:1024]}


def computepool_status(
    pool: dict[str, Any], world: World, d: Decision, out: Outcome, *, now: dt.datetime
) -> tuple[dict[str, Any], list[Event]]:
    """The whole status (conditions included: a merge patch replaces lists) and Events."""
    live = [v for v in map(node_view, world.nodes) if not v.deleting]
    ready = sum(1 for v in live if v.ready)
    stamp = format_time(now)
    conds = _conditions(pool, _readiness(len(live), ready, d, out), d, out, stamp)
    status: dict[str, Any] = {
        **{
            k: v
            for k, v in (pool.get("status") or {}).items()
            if k in ("lastScaleUp", "lastScaleDown")
        },
        "observedGeneration": int(pool["metadata"].get("generation", 1)),
        "nodes": len(live),
        "readyNodes": ready,
        "desiredNodes": d.desired,
        "pendingPods": len(d.pending),
        "unfittablePods": [u.pod for u in d.unfittable][:MAX_LISTED],
        "conditions": conds,
    }
    if out.added:
        status["lastScaleUp"] = _scale(now, d.current, d.current + out.added, d.reason)
    if out.removed:
        status["lastScaleDown"] = _scale(now, d.current, d.current - len(out.removed), d.reason)
    return status, _events(pool, d, out, conds)
