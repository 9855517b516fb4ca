"""spec.rollout.httpRoute as tables: the exact weights each rollout state gives the route, what
each role Service selects, how a canary holds while the route cannot be steered, and the
status, condition and Events that report it."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from perennial_operator.decide.rollout.analysis import RequestStats
from perennial_operator.decide.rollout.machine import (
    InFlight,
    Observed,
    RolloutSpec,
    State,
    Track,
    advance,
    analysis_due,
)
from perennial_operator.decide.rollout.resolution import Target
from perennial_operator.decide.rollout.status import rollout_spec
from perennial_operator.decide.rollout.traffic import (
    RouteProblem,
    backends,
    parent_problem,
    read_problem,
    service_versions,
    traffic_events,
    with_traffic,
)

pytestmark = pytest.mark.unit

V1, V2, V3 = Target("m-v1", 1), Target("m-v2", 2), Target("m-v3", 3)
ROUTED = RolloutSpec(
    strategy="Canary", steps=(10, 50, 100), step_seconds=10, ready_deadline=60, http_route="churn"
)
ROLLING = RolloutSpec(strategy="Rolling", ready_deadline=60, http_route="churn")
T0 = 1000.0
GOOD = RequestStats(requests=1000, errors=1, p99_ms=40.0)
ERRORS = RequestStats(requests=1000, errors=50, p99_ms=40.0)
MISSING = "HTTPRoute churn not found in ml"


def ready(version: int, replicas: int) -> Track:
    return Track(version, replicas, replicas, True)


def scaling(version: int, replicas: int, ready_now: int) -> Track:
    return Track(version, replicas, ready_now, False)


def obs(
    stable: Track | None = None,
    canary: Track | None = None,
    total: int = 4,
    canary_stats: RequestStats | None = None,
    problem: str | None = None,
    route_weight: int | None = None,
) -> Observed:
    return Observed(stable, canary, total, False, canary_stats, GOOD, problem, route_weight)


def flight(
    target: Target, step: int, weight: int | None, started: float = T0, serving: float | None = None
) -> InFlight:
    return InFlight(target, step, weight, started, serving)


def weights(spec: RolloutSpec, state: State, observed: Observed) -> list[tuple[str, Any, int]]:
    return [(b.role, b.version, b.weight) for b in backends(spec, state, observed)]


# id, state, observed -> (role, version the role's Service selects, weight) per backendRef
WEIGHT_CASES = [
    ("at-rest-stable-takes-all", State(V1), obs(ready(1, 4)),
     [("stable", 1, 100)]),
    ("nothing-deployed-yet", State(None), obs(),
     [("stable", None, 100)]),
    ("new-canary-not-ready-gets-nothing", State(V1, flight(V2, 0, 10)),
     obs(ready(1, 4), scaling(2, 1, 0)),
     [("stable", 1, 100), ("canary", 2, 0)]),
    ("first-step-once-ready", State(V1, flight(V2, 0, 10)), obs(ready(1, 4), ready(2, 1)),
     [("stable", 1, 90), ("canary", 2, 10)]),
    ("next-step-keeps-previous-weight-while-scaling-up", State(V1, flight(V2, 1, 50)),
     obs(ready(1, 4), scaling(2, 2, 1)),
     [("stable", 1, 90), ("canary", 2, 10)]),
    ("next-step-once-ready-at-its-size", State(V1, flight(V2, 1, 50)),
     obs(ready(1, 4), ready(2, 2)),
     [("stable", 1, 50), ("canary", 2, 50)]),
    ("later-step-with-no-ready-canary-pod-gets-nothing", State(V1, flight(V2, 1, 50)),
     obs(ready(1, 4), scaling(2, 2, 0)),
     [("stable", 1, 100), ("canary", 2, 0)]),
    ("last-step", State(V1, flight(V2, 2, 100)), obs(ready(1, 4), ready(2, 4)),
     [("stable", 1, 0), ("canary", 2, 100)]),
    ("promotion-keeps-everything-on-the-canary", State(V2, flight(V2, 2, 100)),
     obs(scaling(2, 4, 1), ready(2, 4)),
     [("stable", 2, 0), ("canary", 2, 100)]),
    ("after-promotion-the-new-stable-takes-all", State(V2), obs(ready(2, 4)),
     [("stable", 2, 100)]),
    ("rolling-update-spans-the-stable-deployment", State(V1, flight(V2, 0, None)),
     obs(scaling(2, 4, 2)),
     [("stable", None, 100)]),
]  # fmt: skip


@pytest.mark.parametrize(
    ("state", "observed", "expected"),
    [c[1:] for c in WEIGHT_CASES],
    ids=[c[0] for c in WEIGHT_CASES],
)
def test_weights_for_each_state(state: State, observed: Observed, expected: list[Any]) -> None:
    got = weights(ROUTED, state, observed)
    assert got == expected
    assert sum(w for _, _, w in got) == 100


@pytest.mark.parametrize("steps", [(10, 50, 100), (1, 2, 3, 100), (5, 25, 60, 99, 100), (100,)])
def test_every_step_gets_exactly_its_percentage_once_ready(steps: tuple[int, ...]) -> None:
    spec = RolloutSpec(strategy="Canary", steps=steps, http_route="r")
    for index, weight in enumerate(steps):
        canary_pods = -(-4 * weight // 100)
        got = weights(
            spec, State(V1, flight(V2, index, weight)), obs(ready(1, 4), ready(2, canary_pods))
        )
        assert got == [("stable", 1, 100 - weight), ("canary", 2, weight)]


def test_role_services_select_by_version_and_never_go_empty() -> None:
    assert service_versions(State(V1)) == {"stable": 1, "canary": 1}
    assert service_versions(State(V1, flight(V2, 1, 50))) == {"stable": 1, "canary": 2}
    assert service_versions(State(V2, flight(V2, 2, 100))) == {"stable": 2, "canary": 2}
    # A rollback leaves State(V1): the canary Service falls back to the stable's pods.
    assert service_versions(State(V1)) == {"stable": 1, "canary": 1}
    # A Rolling update: the stable Service follows the Deployment's pods of either version.
    assert service_versions(State(V1, flight(V2, 0, None))) == {"stable": None, "canary": None}


def _drive(spec: RolloutSpec, total: int = 4) -> list[tuple[Any, ...]]:
    """Like the timer: each tick the world has caught up with the last plan. Records
    (step weight, stable replicas, canary replicas, route weights) per tick."""
    state, now, seen = State(V1), T0, []
    plan = advance(spec, state, V2, obs(ready(1, total), total=total), now)
    for _ in range(20):
        state = plan.state
        stable = ready(plan.stable[0].version, plan.stable[1]) if plan.stable else None
        canary = ready(plan.canary[0].version, plan.canary[1]) if plan.canary else None
        world = obs(stable, canary, total=total)
        held = [w for _, _, w in weights(spec, state, world)]  # what the route holds now
        if spec.routed:
            world = obs(stable, canary, total=total, route_weight=held[-1])
        tick = (
            state.rollout.weight if state.rollout else None,
            plan.stable[1],
            plan.canary[1] if plan.canary else None,
            held,
        )
        if not seen or seen[-1] != tick or state.promoting:  # not ticks that start the clock
            seen.append(tick)
        if state.rollout is None:
            break
        now += 11
        if analysis_due(spec, state, world, now):
            world = replace(world, canary_stats=GOOD)
        plan = advance(spec, state, V2, world, now)
    return seen


def test_a_routed_canary_walks_exact_weights_and_keeps_the_stable_whole() -> None:
    assert _drive(ROUTED) == [
        (10, 4, 1, [90, 10]),
        (50, 4, 2, [50, 50]),
        (100, 4, 4, [0, 100]),
        (100, 4, 4, [0, 100]),  # promoted: the stable rolls to v2 while the canary serves
        (None, 4, None, [100]),
    ]


def test_without_a_route_the_stable_shrinks_by_the_replica_ratio_once_the_canary_is_ready() -> None:
    spec = RolloutSpec(strategy="Canary", steps=(10, 50, 100), step_seconds=10)
    assert [s[:3] for s in _drive(spec)] == [
        (10, 4, 1),  # surge: the canary's pod comes first
        (10, 3, 1),  # ready: the stable gives up its share
        (50, 3, 2),
        (50, 2, 2),
        (100, 2, 4),
        (100, 0, 4),
        (100, 4, 4),
        (None, 4, None),
    ]


def test_without_surge_the_stable_shrinks_when_the_step_starts() -> None:
    spec = RolloutSpec(strategy="Canary", steps=(10, 50, 100), step_seconds=10, surge=False)
    assert [s[:3] for s in _drive(spec)] == [
        (10, 3, 1),
        (50, 2, 2),
        (100, 0, 4),
        (100, 4, 4),
        (None, 4, None),
    ]


# id, spec, state, target, observed, now -> state, stable, canary, progressing, events, rollback
HOLD_CASES = [
    ("missing-route-does-not-start-a-canary", ROUTED, State(V1), V2,
     obs(ready(1, 4), problem=MISSING), T0,
     State(V1), (V1, 4), None, (False, "WaitingForHTTPRoute"), [], None),
    ("missing-route-holds-a-step-that-would-pass", ROUTED, State(V1, flight(V2, 0, 10)), V2,
     obs(ready(1, 4), ready(2, 1), canary_stats=GOOD, problem=MISSING), T0 + 11,
     State(V1, flight(V2, 0, 10)), (V1, 4), (V2, 1), (True, "WaitingForHTTPRoute"), [], None),
    ("missing-route-holds-the-last-step-from-promotion", ROUTED,
     State(V1, flight(V2, 2, 100)), V2,
     obs(ready(1, 4), ready(2, 4), canary_stats=GOOD, problem=MISSING), T0 + 11,
     State(V1, flight(V2, 2, 100)), (V1, 4), (V2, 4), (True, "WaitingForHTTPRoute"), [], None),
    ("missing-route-still-rolls-a-breach-back", ROUTED, State(V1, flight(V2, 1, 50)), V2,
     obs(ready(1, 4), ready(2, 2), canary_stats=ERRORS, problem=MISSING), T0 + 11,
     State(V1), (V1, 4), None, (False, "ErrorRateExceeded"), ["RolledBack"],
     "ErrorRateExceeded"),
    ("missing-route-still-rolls-back-at-the-deadline", ROUTED,
     State(V1, flight(V2, 0, 10)), V2,
     obs(ready(1, 4), scaling(2, 1, 0), problem=MISSING), T0 + 61,
     State(V1), (V1, 4), None, (False, "ReadyDeadlineExceeded"), ["RolledBack"],
     "ReadyDeadlineExceeded"),
    ("missing-route-lets-a-promotion-finish", ROUTED, State(V2, flight(V2, 2, 100)), V2,
     obs(ready(2, 4), ready(2, 4), problem=MISSING), T0 + 11,
     State(V2), (V2, 4), None, (False, "RolloutComplete"), ["RolloutComplete"], None),
    ("missing-route-does-not-supersede-a-canary", ROUTED, State(V1, flight(V2, 1, 50)), V3,
     obs(ready(1, 4), ready(2, 2), problem=MISSING), T0 + 5,
     State(V1, flight(V2, 1, 50)), (V1, 4), (V2, 2), (True, "WaitingForHTTPRoute"), [], None),
    ("route-back-starts-the-canary-at-weight-zero", ROUTED, State(V1), V2, obs(ready(1, 4)), T0,
     State(V1, flight(V2, 0, 10)), (V1, 4), (V2, 1), (True, "CanaryStep"), ["CanaryStarted"],
     None),
    ("rolling-needs-no-weights", ROLLING, State(V1), V2, obs(ready(1, 4), problem=MISSING), T0,
     State(V1, flight(V2, 0, None)), (V2, 4), None, (True, "RollingUpdate"),
     ["RolloutStarted"], None),
    ("first-deploy-needs-no-weights", ROUTED, State(None), V1, obs(problem=MISSING), T0,
     State(V1), (V1, 4), None, (True, "Deploying"), ["Deploying"], None),
]  # fmt: skip


@pytest.mark.parametrize(
    ("spec", "state", "target", "observed", "now", "want_state", "want_stable", "want_canary",
     "want_progress", "want_events", "want_rollback"),
    [c[1:] for c in HOLD_CASES], ids=[c[0] for c in HOLD_CASES],
)  # fmt: skip
def test_an_unusable_route_holds_the_canary(spec, state, target, observed, now, want_state,
                                            want_stable, want_canary, want_progress,
                                            want_events, want_rollback) -> None:  # fmt: skip
    plan = advance(spec, state, target, observed, now)
    assert plan.state == want_state
    assert plan.stable == want_stable
    assert plan.canary == want_canary
    assert plan.progressing is not None and plan.progressing[:2] == want_progress
    assert [e.reason for e in plan.events] == want_events
    assert (plan.rollback.reason if plan.rollback else None) == want_rollback
    if want_progress[1] == "WaitingForHTTPRoute":
        assert MISSING in plan.progressing[2]


def test_a_rollback_gives_the_stable_everything() -> None:
    state = State(V1, flight(V2, 1, 50))
    world = obs(ready(1, 4), ready(2, 2), canary_stats=ERRORS)
    before = weights(ROUTED, state, world)
    plan = advance(ROUTED, state, V2, world, T0 + 11)
    assert before == [("stable", 1, 50), ("canary", 2, 50)]
    assert plan.rollback is not None
    assert weights(ROUTED, plan.state, world) == [("stable", 1, 100)]
    assert service_versions(plan.state)["canary"] == 1  # the canary Service: v1's pods now


# id, state, observed, now -> the step's clock (InFlight.serving_since) after the tick
CLOCK_CASES = [
    ("ready-but-the-route-still-holds-the-previous-weight", flight(V2, 1, 50),
     obs(ready(1, 4), ready(2, 2), route_weight=10), T0 + 20, None),
    ("the-route-carries-the-step-weight-the-clock-starts", flight(V2, 1, 50),
     obs(ready(1, 4), ready(2, 2), route_weight=50), T0 + 20, T0 + 20),
    ("the-route-carries-it-but-the-canary-lost-a-pod", flight(V2, 1, 50, serving=T0 + 20),
     obs(ready(1, 4), scaling(2, 2, 1), route_weight=50), T0 + 25, None),
    ("held-route-stops-the-clock", flight(V2, 1, 50, serving=T0 + 20),
     obs(ready(1, 4), ready(2, 2), problem=MISSING), T0 + 25, None),
    ("route-back-starts-it-again-from-zero", flight(V2, 1, 50),
     obs(ready(1, 4), ready(2, 2), route_weight=50), T0 + 40, T0 + 40),
    ("running-clock-is-kept", flight(V2, 1, 50, serving=T0 + 20),
     obs(ready(1, 4), ready(2, 2), route_weight=50), T0 + 25, T0 + 20),
]  # fmt: skip


@pytest.mark.parametrize(
    ("inflight", "observed", "now", "since"),
    [c[1:] for c in CLOCK_CASES],
    ids=[c[0] for c in CLOCK_CASES],
)
def test_the_step_clock_runs_only_while_the_route_carries_the_step(
    inflight: InFlight, observed: Observed, now: float, since: float | None
) -> None:
    plan = advance(ROUTED, State(V1, inflight), V2, observed, now)
    assert plan.state.rollout is not None
    assert plan.state.rollout.step == inflight.step  # nothing passed
    assert plan.state.rollout.serving_since == since


def test_a_routed_step_passes_stepseconds_after_the_route_carried_it_not_before() -> None:
    """The step began at T0; the canary was ready and the route carried 50% only at T0 + 30."""
    started = State(V1, flight(V2, 1, 50, serving=T0 + 30))
    world = obs(ready(1, 4), ready(2, 2), route_weight=50)
    assert not analysis_due(ROUTED, started, world, T0 + 35)
    early = advance(ROUTED, started, V2, replace(world, canary_stats=GOOD), T0 + 35)
    assert early.state == started and early.events == ()
    assert analysis_due(ROUTED, started, world, T0 + 40)
    passed = advance(ROUTED, started, V2, replace(world, canary_stats=GOOD), T0 + 40)
    assert passed.state.rollout == flight(V2, 2, 100, started=T0 + 40)
    # A held route still watches a ready canary for breaches once its step began long ago.
    held = obs(ready(1, 4), ready(2, 2), problem=MISSING)
    assert analysis_due(ROUTED, State(V1, flight(V2, 1, 50)), held, T0 + 11)


def test_events_in_routed_mode_name_the_route_and_the_pods() -> None:
    plan = advance(ROUTED, State(V1), V2, obs(ready(1, 4)), T0)
    (event,) = plan.events
    assert event.message == (
        "step 1/3: m-v2 at 10% of requests via HTTPRoute churn (1 canary, 4 stable pods)"
    )


def test_rollout_spec_reads_the_route_name() -> None:
    spec = rollout_spec(
        {"rollout": {"strategy": "Canary", "steps": [50, 100], "httpRoute": {"name": "churn"}}}
    )
    assert spec.http_route == "churn" and spec.routed
    assert not rollout_spec({"rollout": {"strategy": "Canary", "steps": [100]}}).routed


PROBLEM_CASES = [
    ("route", "HTTPRouteNotFound", "HTTPRoute churn not found in ml"),
    ("api", "GatewayAPINotInstalled", "the Gateway API is not installed"),
    ("forbidden", "HTTPRouteForbidden", "may not read or patch HTTPRoute churn: HTTP 403"),
    ("patch", "HTTPRoutePatchFailed", "HTTPRoute churn: HTTP 403"),
]


@pytest.mark.parametrize(("kind", "reason", "text"), PROBLEM_CASES)
def test_read_problems(kind: str, reason: str, text: str) -> None:
    problem = read_problem(kind, "churn", "ml", "HTTP 403")
    assert problem is not None and problem.reason == reason and text in problem.message
    assert read_problem(None, "churn", "ml") is None


def _parent(name: str, accepted: str, reason: str = "", message: str = "") -> dict[str, Any]:
    cond = {"type": "Accepted", "status": accepted, "reason": reason, "message": message}
    return {
        "parentRef": {"kind": "Gateway", "name": name},
        "controllerName": "example.com/gw",
        "conditions": [cond, {"type": "ResolvedRefs", "status": "True"}],
    }


def test_a_gateway_that_refuses_the_route_is_a_problem() -> None:
    refused = {
        "status": {
            "parents": [
                _parent("public", "True"),
                _parent(
                    "internal", "False", "NotAllowedByListeners", "no listener allows namespace ml"
                ),
            ]
        }
    }
    problem = parent_problem("churn", refused)
    assert problem is not None and problem.reason == "HTTPRouteNotAccepted"
    assert problem.message == (
        "HTTPRoute churn is not accepted by Gateway internal (example.com/gw): "
        "NotAllowedByListeners: no listener allows namespace ml"
    )


@pytest.mark.parametrize(
    "route",
    [
        {},  # no controller has looked at it (or none runs)
        {"status": {"parents": []}},
        {"status": {"parents": [_parent("public", "True")]}},
        {"status": {"parents": [_parent("public", "Unknown", "Pending")]}},
    ],
)
def test_no_refusal_no_problem(route: dict[str, Any]) -> None:
    assert parent_problem("churn", route) is None


NOW = "2026-11-27T14:00:00Z"
APPLIED = [
    {"service": "churn-stable", "version": 1, "weight": 90},
    {"service": "churn-canary", "version": 2, "weight": 10},
]


def test_status_shows_the_applied_weights_and_the_condition() -> None:
    out = with_traffic(
        {"phase": "Progressing", "conditions": []}, "churn", None, APPLIED, generation=3, now=NOW
    )
    assert out["traffic"] == APPLIED
    (cond,) = out["conditions"]
    assert (cond["type"], cond["status"], cond["reason"]) == (
        "TrafficRouted",
        "True",
        "WeightsApplied",
    )
    assert cond["message"] == "HTTPRoute churn: churn-stable 90%, churn-canary 10%"
    assert cond["observedGeneration"] == 3


def test_status_without_a_route_drops_the_condition_and_the_traffic() -> None:
    missing = RouteProblem("HTTPRouteNotFound", MISSING)
    out = with_traffic(
        {"conditions": [], "traffic": APPLIED}, "churn", missing, None, generation=1, now=NOW
    )
    assert out["traffic"] is None
    assert [(c["status"], c["reason"]) for c in out["conditions"]] == [
        ("False", "HTTPRouteNotFound")
    ]
    unset = with_traffic(out, None, None, None, generation=2, now=NOW)
    assert unset["conditions"] == [] and unset["traffic"] is None


def test_a_warning_once_per_problem_and_an_event_per_shift() -> None:
    missing = RouteProblem("HTTPRouteNotFound", MISSING)
    first = traffic_events([], "churn", missing, None)
    assert [(e.type, e.reason) for e in first] == [("Warning", "HTTPRouteNotFound")]
    already = [{"type": "TrafficRouted", "status": "False", "reason": "HTTPRouteNotFound"}]
    assert traffic_events(already, "churn", missing, None) == []
    other = RouteProblem("GatewayAPINotInstalled", "no API")
    assert [e.reason for e in traffic_events(already, "churn", other, None)] == [
        "GatewayAPINotInstalled"
    ]
    shifted = traffic_events(already, "churn", None, APPLIED)
    assert [(e.type, e.reason, e.message) for e in shifted] == [
        ("Normal", "TrafficShifted", "HTTPRoute churn: churn-stable 90%, churn-canary 10%")
    ]
