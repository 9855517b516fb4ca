"""spec.rollout.httpRoute: the per-role Services and the user's HTTPRoute, for one tick.

The InferenceService reconciler reads the route with `observe` and turns it into what the
rollout decides on with `facts` (before it decides); after the decision it writes with
`steer` (the role Services, then the route's weights for the state the plan moves to) and
builds status.traffic with `status`. Decisions are in decide/rollout/traffic.py, manifests
and the patch in desired/httproute.py.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Any

from perennial_operator.api import traffic as t
from perennial_operator.api.tracks import CANARY
from perennial_operator.decide.conditions import get_condition
from perennial_operator.decide.events import Event
from perennial_operator.decide.rollout import traffic
from perennial_operator.decide.rollout.machine import Observed, RolloutSpec, State
from perennial_operator.desired import httproute as desired
from perennial_operator.k8s import httproute
from perennial_operator.k8s.kube import KubeApi

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RouteView:
    """The route as this tick knows it."""

    name: str
    route: dict[str, Any] | None
    problem: traffic.RouteProblem | None
    shifted: list[dict[str, Any]] | None = None  # our weights, when this tick changed them


def observe(kube: KubeApi, isvc: dict[str, Any], spec: RolloutSpec) -> RouteView | None:
    if spec.http_route is None:
        return None
    ns = isvc["metadata"]["namespace"]
    route, what, detail = httproute.read(kube, ns, spec.http_route)
    problem = traffic.read_problem(what, spec.http_route, ns, detail)
    services = desired.our_services(isvc)
    if route is not None and desired.applied(route, services, {}) is None:
        problem = traffic.no_backend_problem(spec.http_route, services)
    elif route is not None and problem is None:
        problem = traffic.parent_problem(spec.http_route, route)
    return RouteView(spec.http_route, route, problem)


def facts(isvc: dict[str, Any], view: RouteView, state: State) -> tuple[str | None, int | None]:
    """What the rollout decides on: why the route cannot be steered (as read, or as the last
    tick's write of it failed) and the canary's weight the route holds as read."""
    previous = (isvc.get("status") or {}).get("conditions") or []
    problem = view.problem or traffic.last_write_problem(previous)
    return (problem.message if problem else None), canary_weight_held(isvc, view, state)


def steer(
    kube: KubeApi,
    isvc: dict[str, Any],
    view: RouteView,
    spec: RolloutSpec,
    state: State,
    obs: Observed,
) -> RouteView:
    """Point the role Services at `state`'s versions, then give the route `state`'s weights.
    Services first: a route never names a Service that does not exist yet."""
    versions = traffic.service_versions(state)
    for role in desired.ROLES:
        kube.apply(desired.role_service(isvc, role, versions[role]))
    if view.route is None or view.problem is not None:
        return view
    refs = desired.backend_refs(isvc, traffic.backends(spec, state, obs))
    services = desired.our_services(isvc)
    ops = desired.route_patch(view.route, services, refs)
    if not ops:  # nothing to change (None cannot happen: observe saw a rule pointing here)
        return view
    ns = isvc["metadata"]["namespace"]
    written, what, detail = httproute.patch(kube, ns, view.name, ops)
    if written is None:
        log.warning(
            "%s/%s: HTTPRoute %s not patched: %s %s",
            ns,
            isvc["metadata"]["name"],
            view.name,
            what,
            detail,
        )
        return replace(view, problem=traffic.read_problem(what, view.name, ns, detail))
    shifted = desired.applied(written, services, _versions(isvc, state))
    return replace(view, route=written, shifted=shifted)


def _versions(isvc: dict[str, Any], state: State) -> dict[str, int | None]:
    return {
        desired.role_service_name(isvc, role): version
        for role, version in traffic.service_versions(state).items()
    }


def canary_weight_held(isvc: dict[str, Any], view: RouteView, state: State) -> int | None:
    """The weight the route holds for `<name>-canary`; None when the route is unusable or
    does not list it. The step clock runs only while it is the step's."""
    if view.route is None or view.problem is not None:
        return None
    applied = desired.applied(view.route, desired.our_services(isvc), _versions(isvc, state))
    name = desired.role_service_name(isvc, CANARY)
    return next((int(a["weight"]) for a in applied or () if a["service"] == name), None)


def status(
    isvc: dict[str, Any], new_status: dict[str, Any], view: RouteView | None, state: State, now: str
) -> tuple[dict[str, Any], list[Event]]:
    """status.traffic and the TrafficRouted condition, and the Events they call for."""
    previous = (isvc.get("status") or {}).get("conditions") or []
    gen = int(isvc["metadata"].get("generation", 1))
    if view is None:
        return traffic.with_traffic(new_status, None, None, None, generation=gen, now=now), []
    applied = None
    if view.route is not None:
        applied = desired.applied(view.route, desired.our_services(isvc), _versions(isvc, state))
    out = traffic.with_traffic(
        new_status, view.name, view.problem, applied, generation=gen, now=now
    )
    return out, traffic.traffic_events(previous, view.name, view.problem, view.shifted)


def drop_services(kube: KubeApi, isvc: dict[str, Any]) -> None:
    """spec.rollout.httpRoute was removed: the role Services go (once: the condition marks
    that they were made)."""
    previous = (isvc.get("status") or {}).get("conditions") or []
    if get_condition(previous, t.TRAFFIC_ROUTED) is None:
        return
    for role in desired.ROLES:
        kube.delete(
            "v1", "Service", isvc["metadata"]["namespace"], desired.role_service_name(isvc, role)
        )
