"""Per-step canary analysis: each canary pod's counters at the step's clock start are the
baseline, and the step is judged on what the pods counted since (with counter resets, pods
that joined or left mid-step, and no traffic), then the baseline's trip through the rollout
state and status."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import yaml

from perennial_operator.decide.monitoring.samples import Sample
from perennial_operator.decide.rollout.analysis import (
    MAX_BASELINE_PODS,
    PodCounters,
    baseline_of,
    compact,
    histogram_quantile,
    increase,
    pod_counters,
    request_stats,
    step_stats,
    threshold_breach,
)
from perennial_operator.decide.rollout.machine import (
    InFlight,
    Observed,
    Plan,
    RolloutSpec,
    State,
    Track,
    advance,
    analysis_due,
    baseline_due,
)
from perennial_operator.decide.rollout.observed import ready_pods
from perennial_operator.decide.rollout.resolution import Resolution, Target
from perennial_operator.decide.rollout.status import (
    Pods,
    inferenceservice_status,
    state_from_status,
)

pytestmark = pytest.mark.unit

INF = math.inf
V1, V2 = Target("m-v1", 1), Target("m-v2", 2)
SPEC = RolloutSpec(
    strategy="Canary",
    steps=(50, 100),
    step_seconds=10,
    max_error_rate=0.05,
    max_p99_ms=250,
    ready_deadline=60,
)
T0 = 1000.0

ROOT = Path(__file__).resolve().parents[2]


def pod(
    name: str, requests: float, errors: float = 0, slow: float = 0, restarts: int = 0
) -> PodCounters:
    """`requests` answered, `errors` of them 5xx, `slow` of them in (0.1s, 1s], the rest in
    (0.005s, 0.01s]."""
    fast = requests - slow
    return PodCounters(
        name,
        restarts,
        requests,
        errors,
        compact([(0.005, 0), (0.01, fast), (0.1, fast), (1.0, requests), (INF, requests)]),
    )


# id, current pods, baseline, -> requests, errors
INCREASE_CASES = [
    ("no-baseline-counts-from-each-pod-start", [pod("a", 100, 5)], None, 100, 5),
    ("growth-since-the-baseline", [pod("a", 300, 7)], [pod("a", 100, 5)], 200, 2),
    ("counter-went-down-is-a-reset", [pod("a", 40, 1)], [pod("a", 100, 5)], 40, 1),
    ("errors-went-down-is-a-reset", [pod("a", 140, 1)], [pod("a", 100, 5)], 140, 1),
    (
        "container-restart-is-a-reset-even-when-counters-grew-past",
        [pod("a", 300, 7, restarts=1)],
        [pod("a", 100, 5)],
        300,
        7,
    ),
    (
        "pod-added-mid-step-counts-from-zero",
        [pod("a", 300, 5), pod("b", 50, 1)],
        [pod("a", 100, 5)],
        250,
        1,
    ),
    (
        "pod-gone-since-the-baseline-is-not-counted",
        [pod("a", 300, 5)],
        [pod("a", 100, 5), pod("gone", 900, 90)],
        200,
        0,
    ),
    (
        "one-pod-reset-the-other-not",
        [pod("a", 300, 6), pod("b", 10, 0)],
        [pod("a", 100, 5), pod("b", 500, 2)],
        210,
        1,
    ),
    ("no-traffic-in-the-step", [pod("a", 100, 5)], [pod("a", 100, 5)], 0, 0),
    ("empty-baseline-counts-everything", [pod("a", 100, 5)], [], 100, 5),
]


@pytest.mark.parametrize(
    ("now", "base", "requests", "errors"),
    [c[1:] for c in INCREASE_CASES],
    ids=[c[0] for c in INCREASE_CASES],
)
def test_step_counts(
    now: list[PodCounters], base: list[PodCounters] | None, requests: float, errors: float
) -> None:
    stats = step_stats(now, base)
    assert (stats.requests, stats.errors) == (requests, errors)


def test_a_bucket_that_went_down_is_a_reset() -> None:
    base = PodCounters("a", 0, 100, 0, ((0.01, 90), (1.0, 100), (INF, 100)))
    now = PodCounters("a", 0, 150, 0, ((0.01, 50), (1.0, 150), (INF, 150)))
    assert increase(now, base) == now


# id, current pods, baseline, -> breach reason of the step (None: passes), and what judging
# the same pods since they started (before the per-step analysis) said
E, L = "ErrorRateExceeded", "LatencyExceeded"
JUDGE_CASES = [
    # 10 errors in 100 requests of this step: 10 % > 5 %, although 10 in 2100 since start.
    ("breach-only-in-this-step", [pod("a", 2100, 10)], [pod("a", 2000, 0)], E, None),
    # 100 errors before the baseline, none since: the earlier step does not fail this one.
    (
        "breach-only-in-an-earlier-step-does-not-fail-this-one",
        [pod("a", 1200, 100)],
        [pod("a", 200, 100)],
        None,
        E,
    ),
    (
        "latency-breach-only-in-this-step",
        [pod("a", 5100, 0, slow=50)],
        [pod("a", 5000, 0, slow=0)],
        L,
        None,
    ),
    (
        "slow-requests-before-the-step-do-not-count",
        [pod("a", 1100, 0, slow=50)],
        [pod("a", 100, 0, slow=50)],
        None,
        L,
    ),
    ("no-traffic-in-the-step-passes", [pod("a", 200, 100)], [pod("a", 200, 100)], None, E),
    (
        "restarted-pod-judged-on-what-it-served-since",
        [pod("a", 100, 20, restarts=1)],
        [pod("a", 5000, 0)],
        E,
        E,
    ),
    (
        "new-pod-mid-step-brings-its-errors",
        [pod("a", 1100, 0), pod("b", 100, 20)],
        [pod("a", 1000, 0)],
        E,
        None,
    ),
]


@pytest.mark.parametrize(
    ("now", "base", "reason", "cumulative"),
    [c[1:] for c in JUDGE_CASES],
    ids=[c[0] for c in JUDGE_CASES],
)
def test_judged_on_the_step(
    now: list[PodCounters], base: list[PodCounters], reason: str | None, cumulative: str | None
) -> None:
    breach = threshold_breach(step_stats(now, base), max_error_rate=0.05, max_p99_ms=250)
    assert (breach[0] if breach else None) == reason
    since_start = threshold_breach(step_stats(now, None), max_error_rate=0.05, max_p99_ms=250)
    assert (since_start[0] if since_start else None) == cumulative


def test_no_traffic_in_the_step_is_no_p99_and_not_a_breach() -> None:
    stats = step_stats([pod("a", 200, 100, slow=100)], [pod("a", 200, 100, slow=100)])
    assert (stats.requests, stats.p99_ms, stats.describe()) == (0, None, "no requests")
    assert threshold_breach(stats, max_error_rate=0.0, max_p99_ms=1.0) is None


def test_the_step_p99_interpolates_like_the_cumulative_one() -> None:
    """Per pod buckets are kept without their leading zeros but one, so the interpolation
    starts at the same bound: a step from an empty baseline equals request_stats."""
    samples = [
        Sample("perennial_requests_total", {"code": "200", "version": "2"}, 100.0),
        *(
            Sample("perennial_request_duration_seconds_bucket", {"le": le, "version": "2"}, n)
            for le, n in (
                ("0.001", 0),
                ("0.004", 0),
                ("0.005", 90.0),
                ("0.5", 100.0),
                ("+Inf", 100.0),
            )
        ),
    ]
    counters = pod_counters("a", 0, samples)
    assert counters.buckets == ((0.004, 0), (0.005, 90.0), (0.5, 100.0), (INF, 100.0))
    assert step_stats([counters], []).p99_ms == request_stats(samples).p99_ms
    assert request_stats(samples).p99_ms == pytest.approx(5 + 495 * 9 / 10)
    # and a delta histogram uses the same interpolation: 100 more, all in (0.005, 0.5]
    later = PodCounters("a", 0, 200, 0, ((0.004, 0), (0.005, 90.0), (0.5, 200.0), (INF, 200)))
    assert step_stats([later], [counters]).p99_ms == pytest.approx(
        1000 * histogram_quantile(0.99, [(0.005, 0), (0.5, 100), (INF, 100)])  # type: ignore[operator]
    )


def test_compact_drops_only_the_leading_zeros_but_one() -> None:
    assert compact([(0.1, 0), (0.2, 0), (0.3, 4), (INF, 4)]) == ((0.2, 0), (0.3, 4), (INF, 4))
    assert compact([(0.1, 3), (INF, 4)]) == ((0.1, 3), (INF, 4))
    assert compact([(0.1, 0), (INF, 0)]) == ()


# --- the baseline in the rollout state ---------------------------------------------------


def world(
    canary_ready: int = 1, pods: tuple[PodCounters, ...] | None = None, **extra: Any
) -> Observed:
    return Observed(
        Track(1, 1, 1, True), Track(2, 1, canary_ready, True), 2, canary_pods=pods, **extra
    )


BASE = (pod("m-canary-a", 500, 40),)


def test_the_baseline_is_taken_when_the_step_clock_starts() -> None:
    waiting = State(V1, InFlight(V2, 0, 50, T0))
    assert baseline_due(SPEC, waiting, world(), T0 + 2.5)
    assert not baseline_due(SPEC, waiting, world(canary_ready=0), T0 + 2.5)
    plan = advance(SPEC, waiting, V2, world(pods=BASE), T0 + 2.5)
    assert plan.state.rollout == InFlight(V2, 0, 50, T0, T0 + 3, BASE)
    # Once the clock runs, no new baseline: the step is measured from the same one.
    assert not baseline_due(SPEC, plan.state, world(), T0 + 5)
    assert not analysis_due(SPEC, plan.state, world(), T0 + 5)
    assert analysis_due(SPEC, plan.state, world(), T0 + 13)


def test_the_next_step_starts_without_a_baseline_and_takes_its_own() -> None:
    running = State(V1, InFlight(V2, 0, 50, T0, T0 + 3, BASE))
    clean = step_stats((pod("m-canary-a", 700, 40),), BASE)
    nxt = advance(SPEC, running, V2, world(canary_stats=clean), T0 + 13)
    assert nxt.state.rollout == InFlight(V2, 1, 100, T0 + 13)
    # at 100 % with T=2 the canary runs 2 pods; once both are ready the clock starts
    ready = Observed(
        Track(1, 0, 0, True),
        Track(2, 2, 2, True),
        2,
        canary_pods=(pod("m-canary-a", 700, 40), pod("m-canary-b", 3)),
    )
    assert baseline_due(SPEC, nxt.state, ready, T0 + 15)
    started = advance(SPEC, nxt.state, V2, ready, T0 + 15)
    assert started.state.rollout is not None
    assert started.state.rollout.baseline == ready.canary_pods


def test_a_stopped_clock_keeps_the_baseline_until_it_starts_again() -> None:
    running = State(V1, InFlight(V2, 0, 50, T0, T0 + 3, BASE))
    stopped = advance(SPEC, running, V2, world(canary_ready=0), T0 + 5)
    assert stopped.state.rollout == InFlight(V2, 0, 50, T0, None, BASE)
    again = (pod("m-canary-a", 800, 40),)
    restarted = advance(SPEC, stopped.state, V2, world(pods=again), T0 + 7)
    assert restarted.state.rollout == InFlight(V2, 0, 50, T0, T0 + 7, again)


# --- the baseline in status ----------------------------------------------------------------

OK = Resolution(V2, "ModelVersionResolved", "ok")


def isvc(status: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "metadata": {"name": "churn", "namespace": "ml", "generation": 1},
        "spec": {"model": {"name": "churn"}},
        "status": status or {},
    }


def test_the_baseline_survives_an_operator_restart_in_status() -> None:
    counters = (pod("m-canary-a", 500, 40, slow=7), pod("m-canary-b", 0))
    state = State(V1, InFlight(V2, 0, 50, 1_790_000_000.0, 1_790_000_003.0, counters))
    plan = Plan(state, (V1, 1), (V2, 1), (True, "CanaryStep", "step 1"))
    status = inferenceservice_status(isvc(), OK, plan, Pods(2, 2, 2, None), now="x")
    assert status["canary"]["baseline"] == [
        {
            "pod": "m-canary-a",
            "restarts": 0,
            "requests": 500,
            "errors": 40,
            "buckets": {"0.005": 0, "0.01": 493, "0.1": 493, "1.0": 500, "+Inf": 500},
        },
        {"pod": "m-canary-b", "restarts": 0, "requests": 0, "errors": 0, "buckets": {}},
    ]
    assert state_from_status(status) == state


def test_a_new_step_removes_the_old_baseline_from_status() -> None:
    """status is written with a merge patch: what the new status lacks must be null."""
    old = State(V1, InFlight(V2, 0, 50, 1_790_000_000.0, 1_790_000_003.0, BASE))
    plan = Plan(old, (V1, 1), (V2, 1), (True, "CanaryStep", "step 1"))
    before = inferenceservice_status(isvc(), OK, plan, Pods(2, 2, 2, None), now="x")
    nxt = State(V1, InFlight(V2, 1, 100, 1_790_000_013.0))
    plan = Plan(nxt, (V1, 0), (V2, 2), (True, "CanaryStep", "step 2"))
    after = inferenceservice_status(isvc(before), OK, plan, Pods(2, 2, 2, None), now="x")
    assert after["canary"]["baseline"] is None and after["canary"]["servingSince"] is None
    assert state_from_status(after) == nxt
    # once removed, nothing is nulled again (no status write on every tick)
    settled = {**after, "canary": {k: v for k, v in after["canary"].items() if v is not None}}
    again = inferenceservice_status(isvc(settled), OK, plan, Pods(2, 2, 2, None), now="x")
    assert again["canary"] == settled["canary"]


def test_ready_pods_carry_name_and_restarts() -> None:
    def p(name: str, ip: str, restarts: int, version: str = "2") -> dict[str, Any]:
        return {
            "metadata": {"name": name, "labels": {"perennial.dev/model-version": version}},
            "status": {
                "podIP": ip,
                "conditions": [{"type": "Ready", "status": "True"}],
                "containerStatuses": [{"restartCount": restarts}],
            },
        }

    pods = [p("b", "10.0.0.2", 3), p("a", "10.0.0.1", 0), p("c", "10.0.0.3", 0, "1")]
    assert [(x.name, x.ip, x.restarts) for x in ready_pods(pods, 2)] == [
        ("a", "10.0.0.1", 0),
        ("b", "10.0.0.2", 3),
    ]


def test_a_canary_larger_than_the_status_can_hold_is_judged_on_a_fixed_sample() -> None:
    names = [f"m-canary-{i:04d}" for i in range(MAX_BASELINE_PODS + 5)]
    at_start = [pod(n, 100) for n in reversed(names)]
    waiting = State(V1, InFlight(V2, 0, 50, T0))
    plan = advance(SPEC, waiting, V2, world(pods=tuple(at_start)), T0 + 2.5)
    baseline = plan.state.rollout.baseline if plan.state.rollout else None
    assert baseline is not None and len(baseline) == MAX_BASELINE_PODS
    assert [p.pod for p in baseline] == names[:MAX_BASELINE_PODS]  # by name, not scrape order
    # In the step the sampled pods served 10 requests each, no errors; the 5 pods outside
    # the sample had 100 errors before the step, which must not count against it.
    now = [pod(n, 110) for n in names[:MAX_BASELINE_PODS]]
    now += [pod(n, 110, errors=100) for n in names[MAX_BASELINE_PODS:]]
    stats = step_stats(now, baseline)
    assert stats.requests == 10 * MAX_BASELINE_PODS and stats.errors == 0
    # Below the cap a pod that joined mid-step still counts from zero.
    partial = baseline_of([pod("m-canary-a", 100)])
    assert step_stats([pod("m-canary-a", 110), pod("m-canary-b", 7, 7)], partial).errors == 7


def test_the_sample_size_is_the_status_schema_limit() -> None:
    crd = yaml.safe_load((ROOT / "crds" / "inferenceservice.yaml").read_text())
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    canary = schema["properties"]["status"]["properties"]["canary"]
    assert canary["properties"]["baseline"]["maxItems"] == MAX_BASELINE_PODS
