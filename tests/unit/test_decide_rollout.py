"""The rollout state machine as a table: (state, target, observed world, time) -> next
state, Deployments, condition, Events and rollback. Then canary analysis (p99 and error
rate from Prometheus counters)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from perennial_operator.decide.monitoring.samples import Sample
from perennial_operator.decide.rollout.analysis import (
    RequestStats,
    histogram_quantile,
    request_stats,
    threshold_breach,
)
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

pytestmark = pytest.mark.unit

V1, V2, V3 = Target("m-v1", 1), Target("m-v2", 2), Target("m-v3", 3)
CANARY = RolloutSpec(
    strategy="Canary",
    steps=(25, 50, 100),
    step_seconds=10,
    max_error_rate=0.01,
    max_p99_ms=250,
    ready_deadline=60,
)
NO_SURGE = replace(CANARY, surge=False)
ROLLING = RolloutSpec(strategy="Rolling", ready_deadline=60)
T0 = 1000.0
GOOD = RequestStats(requests=1000, errors=1, p99_ms=40.0)
ERRORS = RequestStats(requests=1000, errors=50, p99_ms=40.0)
SLOW = RequestStats(requests=1000, errors=0, p99_ms=900.0)


def ready(version: int, replicas: int) -> Track:
    return Track(version, replicas, replicas, True)


def starting(version: int, replicas: int) -> Track:
    return Track(version, replicas, 0, False)


def obs(
    stable: Track | None = None,
    canary: Track | None = None,
    total: int = 4,
    canary_stats: RequestStats | None = None,
    autoscaled: bool = False,
) -> Observed:
    return Observed(stable, canary, total, autoscaled, canary_stats, GOOD)


def flight(
    target: Target, step: int, weight: int | None, started: float = T0, serving: float | None = None
) -> InFlight:
    return InFlight(target, step, weight, started, serving)


def served(target: Target, step: int, weight: int, since: float = T0) -> InFlight:
    """A canary step whose share the canary has served since `since`."""
    return flight(target, step, weight, T0, since)


# id, spec, state, target, observed, now,
#   -> state, stable (target, replicas), canary (target, replicas), progressing reason,
#      event reasons, rollback reason
CASES = [
    ("nothing-resolved-nothing-deployed", CANARY, State(None), None, obs(), T0,
     State(None), None, None, None, [], None),
    ("first-version-deploys-straight", CANARY, State(None), V1, obs(), T0,
     State(V1), (V1, 4), None, "Deploying", ["Deploying"], None),
    ("steady-state", CANARY, State(V1), V1, obs(ready(1, 4)), T0,
     State(V1), (V1, 4), None, None, [], None),
    ("new-version-starts-canary-at-first-step", CANARY, State(V1), V2, obs(ready(1, 4)), T0,
     State(V1, flight(V2, 0, 25)), (V1, 4), (V2, 1), "CanaryStep", ["CanaryStarted"], None),
    # Surge: the stable shrinks to the step's size only once the canary is ready at it.
    ("canary-not-ready-waits-with-the-stable-at-full-size", CANARY,
     State(V1, flight(V2, 0, 25)), V2, obs(ready(1, 4), starting(2, 1)), T0 + 30,
     State(V1, flight(V2, 0, 25)), (V1, 4), (V2, 1), "CanaryStep", [], None),
    ("ready-canary-lets-the-stable-shrink", CANARY, State(V1, flight(V2, 0, 25)), V2,
     obs(ready(1, 4), ready(2, 1)), T0 + 30,
     State(V1, served(V2, 0, 25, T0 + 30)), (V1, 3), (V2, 1), "CanaryStep", [], None),
    ("without-surge-the-stable-shrinks-at-once", NO_SURGE, State(V1, flight(V2, 0, 25)), V2,
     obs(ready(1, 4), starting(2, 1)), T0 + 30,
     State(V1, flight(V2, 0, 25)), (V1, 3), (V2, 1), "CanaryStep", [], None),
    ("canary-ready-but-step-not-held-long-enough", CANARY, State(V1, served(V2, 0, 25)), V2,
     obs(ready(1, 3), ready(2, 1), canary_stats=GOOD), T0 + 5,
     State(V1, served(V2, 0, 25)), (V1, 3), (V2, 1), "CanaryStep", [], None),
    ("step-held-but-not-measured-yet", CANARY, State(V1, served(V2, 0, 25)), V2,
     obs(ready(1, 3), ready(2, 1)), T0 + 11,
     State(V1, served(V2, 0, 25)), (V1, 3), (V2, 1), "CanaryStep", [], None),
    ("healthy-step-advances", CANARY, State(V1, served(V2, 0, 25)), V2,
     obs(ready(1, 3), ready(2, 1), canary_stats=GOOD), T0 + 11,
     State(V1, flight(V2, 1, 50, T0 + 11)), (V1, 3), (V2, 2), "CanaryStep", ["CanaryStep"], None),
    # The step clock starts when the canary serves its share, not when the step began.
    ("ready-canary-starts-its-clock-at-the-next-whole-second", CANARY,
     State(V1, flight(V2, 0, 25)), V2, obs(ready(1, 3), ready(2, 1)), T0 + 30.4,
     State(V1, served(V2, 0, 25, T0 + 31)), (V1, 3), (V2, 1), "CanaryStep", [], None),
    ("slow-canary-is-not-passed-on-the-time-since-its-step-began", CANARY,
     State(V1, served(V2, 0, 25, T0 + 30)), V2,
     obs(ready(1, 3), ready(2, 1), canary_stats=GOOD), T0 + 35,
     State(V1, served(V2, 0, 25, T0 + 30)), (V1, 3), (V2, 1), "CanaryStep", [], None),
    ("slow-canary-passes-after-step-seconds-at-its-share", CANARY,
     State(V1, served(V2, 0, 25, T0 + 30)), V2,
     obs(ready(1, 3), ready(2, 1), canary_stats=GOOD), T0 + 40,
     State(V1, flight(V2, 1, 50, T0 + 40)), (V1, 3), (V2, 2), "CanaryStep", ["CanaryStep"], None),
    ("canary-losing-a-ready-pod-stops-the-clock", CANARY, State(V1, served(V2, 1, 50)), V2,
     obs(ready(1, 2), Track(2, 2, 1, True)), T0 + 5,
     State(V1, flight(V2, 1, 50)), (V1, 3), (V2, 2), "CanaryStep", [], None),
    ("clock-restarts-from-zero-once-ready-again", CANARY, State(V1, flight(V2, 1, 50)), V2,
     obs(ready(1, 2), ready(2, 2), canary_stats=GOOD), T0 + 20,
     State(V1, served(V2, 1, 50, T0 + 20)), (V1, 2), (V2, 2), "CanaryStep", [], None),
    ("ready-deadline-still-counts-from-the-step-start", CANARY,
     State(V1, served(V2, 1, 50, T0 + 30)), V2, obs(ready(1, 2), Track(2, 2, 1, True)),
     T0 + 61,
     State(V1), (V1, 4), None, "ReadyDeadlineExceeded", ["RolledBack"], "ReadyDeadlineExceeded"),
    ("healthy-last-step-promotes", CANARY, State(V1, served(V2, 2, 100)), V2,
     obs(ready(1, 0), ready(2, 4), canary_stats=GOOD), T0 + 11,
     State(V2, flight(V2, 2, 100)), (V2, 4), (V2, 4), "Promoting", ["Promoted"], None),
    ("promoting-waits-for-stable", CANARY, State(V2, flight(V2, 2, 100)), V2,
     obs(starting(2, 4), ready(2, 4)), T0 + 20,
     State(V2, flight(V2, 2, 100)), (V2, 4), (V2, 4), "Promoting", [], None),
    ("promotion-completes-and-canary-goes", CANARY, State(V2, flight(V2, 2, 100)), V2,
     obs(ready(2, 4), ready(2, 4)), T0 + 30,
     State(V2), (V2, 4), None, "RolloutComplete", ["RolloutComplete"], None),
    ("error-rate-breach-rolls-back", CANARY, State(V1, flight(V2, 1, 50)), V2,
     obs(ready(1, 2), ready(2, 2), canary_stats=ERRORS), T0 + 11,
     State(V1), (V1, 4), None, "ErrorRateExceeded", ["RolledBack"], "ErrorRateExceeded"),
    ("latency-breach-rolls-back", CANARY, State(V1, flight(V2, 0, 25)), V2,
     obs(ready(1, 3), ready(2, 1), canary_stats=SLOW), T0 + 11,
     State(V1), (V1, 4), None, "LatencyExceeded", ["RolledBack"], "LatencyExceeded"),
    ("no-traffic-is-not-a-breach", CANARY, State(V1, served(V2, 0, 25)), V2,
     obs(ready(1, 3), ready(2, 1), canary_stats=RequestStats(0, 0, None)), T0 + 11,
     State(V1, flight(V2, 1, 50, T0 + 11)), (V1, 3), (V2, 2), "CanaryStep", ["CanaryStep"], None),
    ("canary-never-ready-rolls-back", CANARY, State(V1, flight(V2, 0, 25)), V2,
     obs(ready(1, 3), starting(2, 1)), T0 + 61,
     State(V1), (V1, 4), None, "ReadyDeadlineExceeded", ["RolledBack"], "ReadyDeadlineExceeded"),
    ("newer-version-supersedes-canary", CANARY, State(V1, flight(V2, 1, 50)), V3,
     obs(ready(1, 2), ready(2, 2)), T0 + 5,
     State(V1, flight(V3, 0, 25, T0 + 5)), (V1, 4), (V3, 1), "CanaryStep",
     ["RolloutSuperseded", "CanaryStarted"], None),
    ("newer-version-during-promotion-starts-from-new-stable", CANARY,
     State(V2, flight(V2, 2, 100)), V3, obs(starting(2, 4), ready(2, 4)), T0 + 5,
     State(V2, flight(V3, 0, 25, T0 + 5)), (V2, 4), (V3, 1), "CanaryStep", ["CanaryStarted"],
     None),
    ("target-back-to-current-abandons", CANARY, State(V1, flight(V2, 1, 50)), V1,
     obs(ready(1, 2), ready(2, 2)), T0 + 5,
     State(V1), (V1, 4), None, "RolloutAbandoned", ["RolloutAbandoned"], None),
    ("nothing-servable-abandons-and-keeps-stable", CANARY, State(V1, flight(V2, 0, 25)), None,
     obs(ready(1, 3), ready(2, 1)), T0 + 5,
     State(V1), (V1, 4), None, "RolloutAbandoned", ["RolloutAbandoned"], None),
    ("nothing-servable-keeps-stable", CANARY, State(V1), None, obs(ready(1, 4)), T0,
     State(V1), (V1, 4), None, None, [], None),
    ("autoscaled-canary-leaves-stable-replicas-to-hpa", CANARY, State(V1), V2,
     obs(ready(1, 6), total=6, autoscaled=True), T0,
     State(V1, flight(V2, 0, 25)), (V1, None), (V2, 2), "CanaryStep", ["CanaryStarted"], None),
    ("rolling-starts-by-moving-the-stable", ROLLING, State(V1), V2, obs(ready(1, 4)), T0,
     State(V1, flight(V2, 0, None)), (V2, 4), None, "RollingUpdate", ["RolloutStarted"], None),
    ("rolling-in-progress", ROLLING, State(V1, flight(V2, 0, None)), V2,
     obs(starting(2, 4)), T0 + 30,
     State(V1, flight(V2, 0, None)), (V2, 4), None, "RollingUpdate", [], None),
    ("rolling-done", ROLLING, State(V1, flight(V2, 0, None)), V2, obs(ready(2, 4)), T0 + 30,
     State(V2), (V2, 4), None, "RolloutComplete", ["RolledOut"], None),
    ("rolling-too-slow-rolls-back", ROLLING, State(V1, flight(V2, 0, None)), V2,
     obs(starting(2, 4)), T0 + 61,
     State(V1), (V1, 4), None, "ReadyDeadlineExceeded", ["RolledBack"], "ReadyDeadlineExceeded"),
    ("strategy-switched-mid-canary-restarts-as-rolling", ROLLING,
     State(V1, flight(V2, 1, 50)), V2, obs(ready(1, 2), ready(2, 2)), T0 + 5,
     State(V1, flight(V2, 0, None, T0 + 5)), (V2, 4), None, "RollingUpdate", ["RolloutStarted"],
     None),
]  # fmt: skip


@pytest.mark.parametrize(
    ("spec", "state", "target", "observed", "now", "want_state", "want_stable", "want_canary",
     "want_reason", "want_events", "want_rollback"),
    [c[1:] for c in CASES], ids=[c[0] for c in CASES],
)  # fmt: skip
def test_rollout_table(spec, state, target, observed, now, want_state, want_stable, want_canary,
                       want_reason, want_events, want_rollback) -> None:  # fmt: skip
    plan = advance(spec, state, target, observed, now)
    assert plan.state == want_state
    assert plan.stable == want_stable
    assert plan.canary == want_canary
    assert (plan.progressing[1] if plan.progressing else None) == want_reason
    assert [e.reason for e in plan.events] == want_events
    assert (plan.rollback.reason if plan.rollback else None) == want_rollback
    if plan.rollback:
        assert plan.rollback.target == state.rollout.target
        assert plan.events[0].type == "Warning"


def test_the_step_message_says_the_stable_keeps_its_pods_until_the_canary_is_ready() -> None:
    waiting = advance(CANARY, State(V1), V2, obs(ready(1, 4)), T0)
    assert waiting.progressing is not None and waiting.progressing[2] == (
        "step 1/3: m-v2 at 25% (1 canary, 3 stable pods; the stable keeps 4 until the canary "
        "is ready)"
    )
    assert [e.message for e in waiting.events] == [waiting.progressing[2]]
    shrunk = advance(CANARY, waiting.state, V2, obs(ready(1, 4), ready(2, 1)), T0 + 5)
    assert shrunk.progressing is not None
    assert shrunk.progressing[2] == "step 1/3: m-v2 at 25% (1 canary, 3 stable pods)"


def test_a_whole_canary_walks_every_step_in_order() -> None:
    """Drive the machine like the timer does, with a world that always catches up."""
    state, now, seen = State(V1), T0, []
    plan = advance(CANARY, state, V2, obs(ready(1, 4)), now)
    for _ in range(20):
        tick = (
            plan.state.rollout.weight if plan.state.rollout else None,
            plan.stable,
            plan.canary,
            plan.state.promoting,
        )
        if not seen or seen[-1] != tick:  # a tick that only started the step clock
            seen.append(tick)
        state = plan.state
        if state.rollout is None:
            break
        stable_version, stable_n = plan.stable[0].version, plan.stable[1]
        world = obs(
            ready(stable_version, stable_n),
            ready(plan.canary[0].version, plan.canary[1]) if plan.canary else None,
        )
        now += 11
        if analysis_due(CANARY, state, world, now):
            world = obs(world.stable, world.canary, canary_stats=GOOD)
        plan = advance(CANARY, state, V2, world, now)
    assert seen == [
        (25, (V1, 4), (V2, 1), False),  # each step's canary pods first (surge) ...
        (25, (V1, 3), (V2, 1), False),  # ... then, once they are ready, the stable shrinks
        (50, (V1, 3), (V2, 2), False),
        (50, (V1, 2), (V2, 2), False),
        (100, (V1, 2), (V2, 4), False),
        (100, (V1, 0), (V2, 4), False),
        (100, (V2, 4), (V2, 4), True),  # promoted: the stable catches up while the canary serves
        (None, (V2, 4), None, False),
    ]


def test_analysis_is_due_only_for_a_canary_that_served_its_share_long_enough() -> None:
    state = State(V1, served(V2, 0, 25))
    world = obs(ready(1, 3), ready(2, 1))
    assert analysis_due(CANARY, state, world, T0 + 11)
    assert not analysis_due(CANARY, state, world, T0 + 5)
    assert not analysis_due(CANARY, state, obs(ready(1, 3), starting(2, 1)), T0 + 11)
    assert not analysis_due(CANARY, State(V2, served(V2, 2, 100)), world, T0 + 11)
    assert not analysis_due(ROLLING, State(V1, flight(V2, 0, None)), world, T0 + 11)
    # Began long ago, but only now ready: the clock starts now, the analysis waits for it.
    assert not analysis_due(CANARY, State(V1, flight(V2, 0, 25)), world, T0 + 100)


POOL = "ComputePool gpu does not exist; the Deployments are left as they are"


def no_pool(observed: Observed) -> Observed:
    return replace(observed, pool_problem=POOL)


# id, state, target, observed, now -> state, stable, canary (what the current state runs;
# the caller applies nothing while the pool is missing)
POOL_CASES = [
    ("nothing-deployed-waits-for-the-pool", State(None), V1, no_pool(obs()), T0,
     State(None), None, None),
    ("no-rollout-starts", State(V1), V2, no_pool(obs(ready(1, 4))), T0,
     State(V1), (V1, 4), None),
    ("a-canary-step-does-not-pass", State(V1, served(V2, 0, 25)), V2,
     no_pool(obs(ready(1, 3), ready(2, 1), canary_stats=GOOD)), T0 + 30,
     State(V1, served(V2, 0, 25)), (V1, 3), (V2, 1)),
    ("no-deadline-runs-out-on-unplaceable-pods", State(V1, flight(V2, 0, 25)), V2,
     no_pool(obs(ready(1, 4), starting(2, 1))), T0 + 600,
     State(V1, flight(V2, 0, 25)), (V1, 4), (V2, 1)),
    ("a-rolling-update-is-not-rolled-back", ROLLING, State(V1, flight(V2, 0, None)), V2,
     no_pool(obs(starting(2, 4))), T0 + 600,
     State(V1, flight(V2, 0, None)), (V2, 4), None),
]  # fmt: skip


@pytest.mark.parametrize(("case",), [(c,) for c in POOL_CASES], ids=[c[0] for c in POOL_CASES])
def test_a_missing_pool_holds_the_service_where_it_is(case: tuple[Any, ...]) -> None:
    spec = case[1] if isinstance(case[1], RolloutSpec) else CANARY
    state, target, observed, now, want_state, want_stable, want_canary = (
        case[2:] if isinstance(case[1], RolloutSpec) else case[1:]
    )
    plan = advance(spec, state, target, observed, now)
    assert plan.state == want_state
    assert (plan.stable, plan.canary) == (want_stable, want_canary)
    assert plan.progressing == (False, "ComputePoolNotFound", POOL)
    assert plan.events == () and plan.rollback is None
    assert not analysis_due(spec, state, observed, now)


# ---- analysis -----------------------------------------------------------------------------

QUANTILE_CASES = [
    ("empty", [], None),
    ("no-observations", [(0.1, 0), (float("inf"), 0)], None),
    ("all-in-first-bucket", [(0.1, 100), (0.5, 100), (float("inf"), 100)], 0.099),
    ("interpolated", [(0.1, 50), (0.5, 100), (float("inf"), 100)], 0.1 + 0.4 * 49 / 50),
    ("in-inf-bucket-answers-highest-bound", [(0.1, 10), (0.5, 20), (float("inf"), 100)], 0.5),
]


@pytest.mark.parametrize(
    ("buckets", "expected"), [c[1:] for c in QUANTILE_CASES], ids=[c[0] for c in QUANTILE_CASES]
)
def test_histogram_quantile(buckets: list[tuple[float, float]], expected: float | None) -> None:
    got = histogram_quantile(0.99, buckets)
    assert got == (None if expected is None else pytest.approx(expected))


def _server_samples(pod: str, ok: float, errors: float, fast: float, slow: float) -> list[Sample]:
    base = {"model": "m", "version": "2", "protocol": "v2"}
    return [
        Sample("perennial_requests_total", {**base, "code": "200"}, ok),
        Sample("perennial_requests_total", {**base, "code": "500"}, errors),
        Sample("perennial_requests_total", {**base, "code": "400"}, 5.0),
        Sample("perennial_request_duration_seconds_bucket", {**base, "le": "0.01"}, fast),
        Sample("perennial_request_duration_seconds_bucket", {**base, "le": "1.0"}, fast + slow),
        Sample("perennial_request_duration_seconds_bucket", {**base, "le": "+Inf"}, fast + slow),
    ]


def test_request_stats_sum_replicas() -> None:
    samples = _server_samples("a", 95, 0, 100, 0) + _server_samples("b", 90, 5, 99, 1)
    stats = request_stats(samples)
    # 4xx are the client's fault, refused before the model ran: not served requests
    assert stats.requests == 190 and stats.errors == 5
    assert stats.error_rate == pytest.approx(5 / 190)
    assert stats.p99_ms == pytest.approx(10.0 * 198 / 199)  # rank 198 of 200: the fast bucket


def test_thresholds() -> None:
    assert threshold_breach(GOOD, max_error_rate=0.01, max_p99_ms=250) is None
    assert threshold_breach(ERRORS, max_error_rate=0.01, max_p99_ms=250)[0] == "ErrorRateExceeded"
    assert threshold_breach(SLOW, max_error_rate=0.01, max_p99_ms=250)[0] == "LatencyExceeded"
    assert threshold_breach(RequestStats(0, 0, None), max_error_rate=0, max_p99_ms=0) is None
