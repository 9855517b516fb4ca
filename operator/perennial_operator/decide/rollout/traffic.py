"""Exact canary weights through a Gateway API HTTPRoute (spec.rollout.httpRoute). Pure.

Two Services per InferenceService carry the weights, named for their role but selecting by
version, so that no Service a route points at is ever empty:

- `<name>-stable` selects the pods of the current version (during a Rolling update: every
  pod of the stable Deployment, whichever version it runs);
- `<name>-canary` selects the pods of the version being rolled out, and between rollouts
  the same pods as `<name>-stable`.

The route's rules that point at this InferenceService get `<name>-stable` at 100 - w and
`<name>-canary` at w while a canary runs at step weight w; at rest, `<name>-stable` at 100.
During the promotion the canary keeps 100 (its Service and, once the stable Deployment has
rolled, the stable's pods all run the new version); when the rollout completes the weight
goes back to `<name>-stable`, which selects the same version. On a rollback `<name>-canary`
falls back to the stable's pods at once (a selector change needs no gateway), and the route
gives `<name>-stable` 100.

A canary's weight rises to its step's percentage only once the canary Deployment is ready at
the step's size; until then it keeps the previous step's weight (0 for a new canary), so the
gateway never sends a share to pods that cannot take it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from perennial_operator.api import traffic as t
from perennial_operator.api.tracks import CANARY, STABLE
from perennial_operator.api.traffic import Backend
from perennial_operator.decide.conditions import Condition, get_condition, set_condition
from perennial_operator.decide.events import Event
from perennial_operator.decide.rollout.machine import Observed, RolloutSpec, State, split


@dataclass(frozen=True)
class RouteProblem:
    """Why the route cannot be steered: the condition's reason and message."""

    reason: str
    message: str


def service_versions(state: State) -> dict[str, int | None]:
    """The model version each role's Service selects in `state` (None: track stable)."""
    flight, current = state.rollout, state.current
    rolling = flight is not None and flight.weight is None
    stable = None if rolling or current is None else current.version
    canary = flight.target.version if flight is not None and flight.weight is not None else stable
    return {STABLE: stable, CANARY: canary}


def canary_weight(spec: RolloutSpec, state: State, obs: Observed) -> int:
    """The share the canary gets now: its step's weight once it is ready at the step's size,
    the previous step's weight while it scales up to it, 0 until a new canary is ready."""
    flight = state.rollout
    if flight is None or flight.weight is None:
        return 0
    if state.promoting:
        return 100
    canary = obs.canary
    wanted = split(spec, obs, flight.weight).canary
    if canary is not None and canary.serves(flight.target.version, wanted):
        return flight.weight
    earlier = spec.steps[flight.step - 1] if 0 < flight.step <= len(spec.steps) else 0
    up = canary is not None and canary.version == flight.target.version and canary.ready > 0
    return min(earlier, flight.weight) if up else 0


def backends(spec: RolloutSpec, state: State, obs: Observed) -> tuple[Backend, ...]:
    """The weights the route's rules should carry in `state`; they always sum to 100."""
    versions = service_versions(state)
    flight = state.rollout
    if flight is None or flight.weight is None:
        return (Backend(STABLE, versions[STABLE], 100),)
    weight = canary_weight(spec, state, obs)
    return (
        Backend(STABLE, versions[STABLE], 100 - weight),
        Backend(CANARY, versions[CANARY], weight),
    )


def read_problem(
    kind: str | None, route: str, namespace: str, detail: str = ""
) -> RouteProblem | None:
    """What a failed read of the route means. `kind` is what k8s/httproute.py reports."""
    if kind is None:
        return None
    if kind == "api":
        return RouteProblem(
            t.GATEWAY_API_NOT_INSTALLED,
            f"the Gateway API is not installed: the API server serves no "
            f"{t.HTTPROUTES}.{t.GATEWAY_GROUP}/{t.GATEWAY_VERSION}, so HTTPRoute {route} "
            "cannot be steered",
        )
    if kind == "forbidden":
        return RouteProblem(
            t.HTTPROUTE_FORBIDDEN,
            f"the operator may not read or patch HTTPRoute {route}: {detail}".rstrip(": "),
        )
    if kind == "patch":
        return RouteProblem(t.HTTPROUTE_PATCH_FAILED, f"HTTPRoute {route}: {detail}")
    return RouteProblem(t.HTTPROUTE_NOT_FOUND, f"HTTPRoute {route} not found in {namespace}")


def last_write_problem(conditions: list[Condition]) -> RouteProblem | None:
    """The last tick's write of the route's weights failed (TrafficRouted=False, patch failed
    or forbidden): the route may not carry what the rollout's state needs, so it holds the
    canary as a failed read does, until a write goes through (each tick writes again)."""
    cond = get_condition(conditions, t.TRAFFIC_ROUTED) or {}
    if cond.get("status") != "False":
        return None
    if cond.get("reason") not in (t.HTTPROUTE_PATCH_FAILED, t.HTTPROUTE_FORBIDDEN):
        return None
    return RouteProblem(str(cond["reason"]), str(cond.get("message") or ""))


def no_backend_problem(route: str, services: Sequence[str]) -> RouteProblem:
    names = ", ".join(services)
    return RouteProblem(
        t.HTTPROUTE_NO_BACKEND,
        f"no rule of HTTPRoute {route} has a backendRef to Service {names}: point the rule "
        "that should reach this InferenceService at one of them",
    )


def parent_problem(route_name: str, route: Mapping[str, Any]) -> RouteProblem | None:
    """A gateway that refused the route (status.parents[].conditions Accepted=False): weights
    written to it reach no traffic through that gateway, so the canary must not count on
    them. Only what a controller reported counts: a route no controller has looked at yet
    (or a cluster with none, like a bare API server) has no parents in its status."""
    for parent in (route.get("status") or {}).get("parents") or []:
        for cond in parent.get("conditions") or []:
            if cond.get("type") == "Accepted" and cond.get("status") == "False":
                ref = parent.get("parentRef") or {}
                where = f"{ref.get('kind', 'Gateway')} {ref.get('name', '?')}"
                said = ": ".join(str(x) for x in (cond.get("reason"), cond.get("message")) if x)
                return RouteProblem(
                    t.HTTPROUTE_NOT_ACCEPTED,
                    f"HTTPRoute {route_name} is not accepted by {where} "
                    f"({parent.get('controllerName', 'its controller')}): {said}".rstrip(": "),
                )
    return None


def describe(applied: Sequence[Mapping[str, Any]]) -> str:
    return ", ".join(f"{b['service']} {b['weight']}%" for b in applied)


def traffic_condition(
    conditions: list[Condition],
    route: str,
    problem: RouteProblem | None,
    applied: Sequence[Mapping[str, Any]] | None,
    *,
    generation: int,
    now: str,
) -> list[Condition]:
    if problem is not None:
        status, reason, message = False, problem.reason, problem.message
    else:
        status, reason = True, t.WEIGHTS_APPLIED
        message = f"HTTPRoute {route}: {describe(applied or ())}"
    return set_condition(
        conditions,
        type_=t.TRAFFIC_ROUTED,
        status=status,
        reason=reason,
        message=message,
        generation=generation,
        now=now,
    )


def without_traffic_condition(conditions: list[Condition]) -> list[Condition]:
    return [c for c in conditions if c.get("type") != t.TRAFFIC_ROUTED]


def traffic_events(
    previous: list[Condition],
    route: str,
    problem: RouteProblem | None,
    shifted: Sequence[Mapping[str, Any]] | None,
) -> list[Event]:
    """A Warning when the route becomes unusable (once, not every tick), and a Normal Event
    whenever the operator changed its weights."""
    events = []
    if problem is not None:
        old = get_condition(previous, t.TRAFFIC_ROUTED)
        if old is None or old.get("status") != "False" or old.get("reason") != problem.reason:
            events.append(Event("Warning", problem.reason, problem.message))
    if shifted is not None:
        events.append(Event("Normal", t.TRAFFIC_SHIFTED, f"HTTPRoute {route}: {describe(shifted)}"))
    return events


def with_traffic(
    status: Mapping[str, Any],
    route: str | None,
    problem: RouteProblem | None,
    applied: Sequence[Mapping[str, Any]] | None,
    *,
    generation: int,
    now: str,
) -> dict[str, Any]:
    """`status` with the TrafficRouted condition and status.traffic: the weights the route
    holds for our Services (after our patch; as read when the patch failed; absent when there
    is no route or no rule points here). Both go away when spec.rollout.httpRoute is unset."""
    conditions = list(status.get("conditions") or [])
    if route is None:
        return {**status, "conditions": without_traffic_condition(conditions), "traffic": None}
    conditions = traffic_condition(
        conditions, route, problem, applied, generation=generation, now=now
    )
    traffic = [dict(a) for a in applied] if applied else None
    return {**status, "conditions": conditions, "traffic": traffic}
