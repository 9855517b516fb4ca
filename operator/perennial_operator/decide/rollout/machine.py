"""The rollout state machine: from the current version to a newly resolved one.

State lives in the InferenceService's status (currentVersion + canary), so a restarted
operator resumes where it stopped. One call of `advance` is one tick: given the state, the
resolved target, what the cluster shows and the time, it returns the next state, the
Deployments to run, the Events to post, and whether a version is rolled back.

- Rolling: the stable Deployment's pod template moves to the target (the Deployment's own
  rolling update); done when it has rolled out, rolled back if that takes longer than
  readyDeadlineSeconds.
- Canary: a canary Deployment runs the target beside the stable; the replica ratio follows
  spec.rollout.steps. A step's clock (`InFlight.serving_since`) starts when the canary serves
  the step's share: its Deployment ready at the step's size and, with an HTTPRoute, the route
  read carrying the step's weight. It stops (and starts again from zero) whenever the canary stops
  serving it. A step passes when the canary has served its share for stepSeconds and its
  metrics are within the thresholds. The metrics are the step's own: when the clock starts,
  the canary pods' counters are kept in the state (`InFlight.baseline`), and the caller
  measures from there (analysis.py `step_stats`). readyDeadlineSeconds still counts
  from the step's start.
  After the last step the target becomes current: the stable Deployment rolls to it while the
  canary still serves, then the canary goes.
- With spec.rollout.httpRoute the route's weights make the percentages exact (traffic.py sets
  them), so the stable keeps all its replicas during a canary, as Argo Rollouts does with
  traffic routing: its capacity never drops below its share, and a rollback needs no scale-up.
  A canary does not start or move to another step while the route cannot be steered
  (`Observed.route_problem`): it holds, and a rollback still happens.
- A different target arriving mid-rollout supersedes the rollout: the in-flight version is
  dropped (not rejected: it did nothing wrong) and a new rollout starts from the current
  stable at step 0. A target falling back to the current version (or to nothing servable)
  abandons the rollout.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from perennial_operator.api import conditions as c
from perennial_operator.api.traffic import WAITING_FOR_HTTPROUTE
from perennial_operator.decide.events import Event
from perennial_operator.decide.rollout.analysis import (
    PodCounters,
    RequestStats,
    baseline_of,
    threshold_breach,
)
from perennial_operator.decide.rollout.replicas import Split, canary_split
from perennial_operator.decide.rollout.resolution import Target

CANARY = "Canary"
ROLLING = "Rolling"


@dataclass(frozen=True)
class RolloutSpec:
    strategy: str = ROLLING
    steps: tuple[int, ...] = ()
    step_seconds: float = 60.0
    max_error_rate: float = 0.01
    max_p99_ms: float = 250.0
    ready_deadline: float = 300.0
    http_route: str | None = None  # spec.rollout.httpRoute.name: weights are set on it
    # spec.rollout.surge: without a route, the stable shrinks to a step's size only once the
    # canary is ready at it (a canary that never gets ready must not cost capacity)
    surge: bool = True

    @property
    def routed(self) -> bool:
        return self.http_route is not None


@dataclass(frozen=True)
class InFlight:
    """status.canary: the version being rolled out. weight is None for a Rolling update."""

    target: Target
    step: int
    weight: int | None
    started: float  # when the current step started (epoch seconds)
    # when the canary began serving the step's share (whole epoch seconds, rounded up so a
    # status round trip never shortens the step); None while it does not serve it
    serving_since: float | None = None
    # the canary pods' counters when the step's clock last started: the step is judged on
    # what they counted since. None: not taken in this step (counts from each pod's start)
    baseline: tuple[PodCounters, ...] | None = None


@dataclass(frozen=True)
class State:
    current: Target | None
    rollout: InFlight | None = None

    @property
    def promoting(self) -> bool:
        """The last canary step passed: the stable Deployment is catching up."""
        return self.rollout is not None and self.rollout.target == self.current


@dataclass(frozen=True)
class Track:
    """One Deployment as observed."""

    version: int | None
    replicas: int
    ready: int
    rolled_out: bool  # observed its latest spec, every pod updated, none left over

    def serves(self, version: int, replicas: int) -> bool:
        return self.version == version and self.rolled_out and self.ready >= replicas


@dataclass(frozen=True)
class Observed:
    stable: Track | None
    canary: Track | None
    total: int  # replicas the service should run: spec.replicas, or what the HPA chose
    autoscaled: bool = False
    canary_stats: RequestStats | None = None
    stable_stats: RequestStats | None = None
    route_problem: str | None = None  # why spec.rollout.httpRoute cannot be steered now
    route_weight: int | None = None  # the canary's weight the route holds, as read this tick
    pool_problem: str | None = None  # the ComputePool named in the spec cannot be used
    pool_reason: str = c.COMPUTE_POOL_NOT_FOUND  # ... missing, or not for this namespace
    # every ready canary pod's counters, scraped when `baseline_due` (None: not scraped)
    canary_pods: tuple[PodCounters, ...] | None = None


@dataclass(frozen=True)
class Rollback:
    target: Target
    reason: str
    message: str


@dataclass(frozen=True)
class Plan:
    state: State
    stable: tuple[Target, int | None] | None  # version and replicas (None: the HPA decides)
    canary: tuple[Target, int] | None  # None: no canary Deployment
    progressing: tuple[bool, str, str] | None  # None: leave the condition as it was
    events: tuple[Event, ...] = ()
    rollback: Rollback | None = None


def split(spec: RolloutSpec, obs: Observed, weight: int) -> Split:
    """Replicas per track at a canary weight. By replica ratio without a route; with one the
    canary is sized for its share and the stable keeps every replica."""
    ratio = canary_split(obs.total, weight)
    return Split(obs.total, ratio.canary) if spec.routed else ratio


def stable_pods(spec: RolloutSpec, flight: InFlight, obs: Observed) -> int:
    """The stable's pods during a canary step: the step's share by replica ratio, but with
    surge, the previous step's (every pod for the first) until the canary is ready at the
    step's size. Its pods are extra for that while, as a Deployment's maxSurge makes them."""
    assert flight.weight is not None
    now = split(spec, obs, flight.weight).stable
    if not spec.surge or spec.routed or _ready(spec, flight, obs):
        return now
    if flight.step == 0:
        return obs.total
    return max(now, split(spec, obs, spec.steps[flight.step - 1]).stable)


def _ready(spec: RolloutSpec, flight: InFlight, obs: Observed) -> bool:
    """The canary Deployment runs the step's size, every pod ready."""
    assert flight.weight is not None
    wanted = split(spec, obs, flight.weight).canary
    return obs.canary is not None and obs.canary.serves(flight.target.version, wanted)


def serves_share(spec: RolloutSpec, flight: InFlight, obs: Observed) -> bool:
    """Does the canary get its step's share now? Without a route: when its Deployment is
    ready at the step's size. With one: when, in addition, the route is read holding the
    step's weight (traffic.py has it written once the canary is ready, so the clock starts
    on the tick after that write)."""
    if not _ready(spec, flight, obs):
        return False
    if not spec.routed:
        return True
    return obs.route_problem is None and obs.route_weight == flight.weight


def clocked(spec: RolloutSpec, flight: InFlight, obs: Observed, now: float) -> InFlight:
    """`flight` with its step clock started (at the next whole second) when the canary has
    just got its share, or stopped when it lost it; unchanged otherwise. A clock that starts
    takes the canary pods' counters (`obs.canary_pods`) as the step's baseline; a stopped
    one keeps its baseline until the clock starts again, so a held step is still judged
    from there."""
    if flight.weight is None:
        return flight
    if not serves_share(spec, flight, obs):
        return replace(flight, serving_since=None)
    if flight.serving_since is None:
        pods = None if obs.canary_pods is None else baseline_of(obs.canary_pods)
        return replace(flight, serving_since=float(math.ceil(now)), baseline=pods)
    return flight


def baseline_due(spec: RolloutSpec, state: State, obs: Observed, now: float) -> bool:
    """Should the caller scrape the canary pods' counters (`Observed.canary_pods`) before
    calling `advance`? When the step's clock starts on this tick: they become its baseline."""
    flight = state.rollout
    if flight is None or flight.weight is None or state.promoting or spec.strategy != CANARY:
        return False
    if obs.pool_problem is not None or flight.serving_since is not None:
        return False
    return clocked(spec, flight, obs, now).serving_since is not None


def step_served(spec: RolloutSpec, flight: InFlight, now: float) -> bool:
    """The canary has served the step's share for stepSeconds."""
    since = flight.serving_since
    return since is not None and now - since >= spec.step_seconds


def analysis_due(spec: RolloutSpec, state: State, obs: Observed, now: float) -> bool:
    """Should the caller scrape metrics before calling `advance`? When the step may pass,
    and, while the route is held, once the step began stepSeconds ago: a breach still rolls
    back a canary that cannot move on."""
    flight = state.rollout
    if flight is None or flight.weight is None or state.promoting or spec.strategy != CANARY:
        return False
    if obs.pool_problem is not None or not _ready(spec, flight, obs):
        return False
    if spec.routed and obs.route_problem is not None:
        return now - flight.started >= spec.step_seconds
    return step_served(spec, clocked(spec, flight, obs, now), now)


def advance(
    spec: RolloutSpec, state: State, target: Target | None, obs: Observed, now: float
) -> Plan:
    if obs.pool_problem is not None:
        return _pool_held(spec, state, obs, obs.pool_problem)
    if state.current is None:
        return _first_deploy(target, obs)
    flight = state.rollout
    if target is not None and target != state.current:
        kind_changed = flight is not None and (flight.weight is None) != (spec.strategy != CANARY)
        if flight is None or flight.target != target or kind_changed:
            if spec.strategy == CANARY and obs.route_problem is not None:
                return _held(spec, state, obs, f"{target.name} waits: {obs.route_problem}")
            return _start(spec, state, target, obs, now)
        if flight.weight is None:
            return _rolling(spec, state, flight, obs, now)
        return _canary(spec, state, flight, obs, now)
    if state.promoting:
        return _promoting(spec, state, obs)
    return _settle(state, obs, target)


def _replicas(obs: Observed, wanted: int) -> int | None:
    return None if obs.autoscaled else wanted


def _first_deploy(target: Target | None, obs: Observed) -> Plan:
    if target is None:
        return Plan(State(None), None, None, None)
    event = Event("Normal", "Deploying", f"deploying {target.name} on {obs.total} replicas")
    progress = (True, c.DEPLOYING, f"deploying {target.name}")
    return Plan(State(target), (target, _replicas(obs, obs.total)), None, progress, (event,))


def _settle(state: State, obs: Observed, target: Target | None) -> Plan:
    current = state.current
    assert current is not None
    stable = (current, _replicas(obs, obs.total))
    flight = state.rollout
    if flight is None:
        return Plan(state, stable, None, None)
    why = f"the spec now resolves to {target.name}" if target else "nothing servable resolves"
    message = f"stopped rolling out {flight.target.name}: {why}; {current.name} keeps serving"
    return Plan(
        State(current),
        stable,
        None,
        (False, c.ROLLOUT_ABANDONED, message),
        (Event("Normal", "RolloutAbandoned", message),),
    )


def _start(spec: RolloutSpec, state: State, target: Target, obs: Observed, now: float) -> Plan:
    current = state.current
    assert current is not None
    events: list[Event] = []
    flight = state.rollout
    if flight is not None and not state.promoting and flight.target != target:
        events.append(
            Event("Normal", "RolloutSuperseded", f"{target.name} supersedes {flight.target.name}")
        )
    if spec.strategy != CANARY:
        message = f"rolling update {current.name} -> {target.name}"
        events.append(Event("Normal", "RolloutStarted", message))
        return Plan(
            State(current, InFlight(target, 0, None, now)),
            (target, _replicas(obs, obs.total)),
            None,
            (True, c.ROLLING_UPDATE, message),
            tuple(events),
        )
    new = InFlight(target, 0, spec.steps[0], now)
    plan = _canary_plan(State(current, new), obs, "CanaryStarted", spec)
    return replace(plan, events=(*events, *plan.events))


def _canary_plan(
    state: State, obs: Observed, reason: str | None, spec: RolloutSpec, extra: str = ""
) -> Plan:
    """Deployments for the canary step in `state`, and an Event when `reason` is given."""
    flight, current = state.rollout, state.current
    assert flight is not None and flight.weight is not None and current is not None
    pods = split(spec, obs, flight.weight)
    stable = stable_pods(spec, flight, obs)
    share = f"of requests via HTTPRoute {spec.http_route} " if spec.routed else ""
    surge = ""
    if stable != pods.stable:
        surge = f"; the stable keeps {stable} until the canary is ready"
    message = (
        f"step {flight.step + 1}/{len(spec.steps)}: {flight.target.name} at {flight.weight}% "
        f"{share}({pods.canary} canary, {pods.stable} stable pods{surge}){extra}"
    )
    return Plan(
        state,
        (current, _replicas(obs, stable)),
        (flight.target, pods.canary),
        (True, c.CANARY_STEP, message),
        (Event("Normal", reason, message),) if reason else (),
    )


def _held(spec: RolloutSpec, state: State, obs: Observed, why: str) -> Plan:
    """The route cannot be steered: keep the Deployments as the current state has them, start
    nothing, pass no step. Weights are never guessed."""
    flight, current = state.rollout, state.current
    assert current is not None
    if flight is not None and flight.weight is not None and not state.promoting:
        plan = _canary_plan(state, obs, None, spec)
    elif flight is not None and flight.weight is None:  # a Rolling update a canary would replace
        plan = Plan(state, (flight.target, _replicas(obs, obs.total)), None, None)
    else:
        plan = Plan(state, (current, _replicas(obs, obs.total)), None, None)
    return replace(plan, progressing=(flight is not None, WAITING_FOR_HTTPROUTE, why))


def _pool_held(spec: RolloutSpec, state: State, obs: Observed, why: str) -> Plan:
    """The ComputePool is missing: nothing moves (no rollout starts, no step passes, no
    deadline runs out on pods that cannot be placed) and the caller leaves the Deployments as
    they are, since neither an unplaced pod nor a deleted one is what the spec asks for."""
    if state.current is None:
        plan = Plan(state, None, None, None)
    else:
        plan = _held(spec, state, obs, why)
    return replace(plan, progressing=(False, obs.pool_reason, why))


def _rollback(state: State, obs: Observed, flight: InFlight, reason: str, detail: str) -> Plan:
    current = state.current
    assert current is not None
    message = f"rolled back {flight.target.name}: {detail}; {current.name} keeps serving"
    return Plan(
        State(current),
        (current, _replicas(obs, obs.total)),
        None,
        (False, reason, message),
        (Event("Warning", "RolledBack", message),),
        Rollback(flight.target, reason, detail),
    )


def _rolling(spec: RolloutSpec, state: State, flight: InFlight, obs: Observed, now: float) -> Plan:
    stable = (flight.target, _replicas(obs, obs.total))
    wanted = obs.stable.replicas if obs.autoscaled and obs.stable else obs.total
    if obs.stable is not None and obs.stable.serves(flight.target.version, wanted):
        message = f"{flight.target.name} rolled out on {obs.stable.ready} replicas"
        return Plan(
            State(flight.target),
            stable,
            None,
            (False, c.ROLLOUT_COMPLETE, message),
            (Event("Normal", "RolledOut", message),),
        )
    if now - flight.started > spec.ready_deadline:
        ready = obs.stable.ready if obs.stable else 0
        detail = f"not ready within {spec.ready_deadline:.0f}s ({ready}/{wanted} ready)"
        return _rollback(state, obs, flight, c.READY_DEADLINE_EXCEEDED, detail)
    progress = (True, c.ROLLING_UPDATE, f"rolling update to {flight.target.name}")
    return Plan(state, stable, None, progress)


def _canary(spec: RolloutSpec, state: State, flight: InFlight, obs: Observed, now: float) -> Plan:
    weight = flight.weight
    assert weight is not None
    flight = clocked(spec, flight, obs, now)
    state = State(state.current, flight)
    waiting = _canary_plan(state, obs, None, spec)
    if not _ready(spec, flight, obs):
        if now - flight.started <= spec.ready_deadline:
            return waiting
        have = obs.canary.ready if obs.canary else 0
        wanted = split(spec, obs, weight).canary
        detail = f"canary not ready within {spec.ready_deadline:.0f}s ({have}/{wanted} ready)"
        return _rollback(state, obs, flight, c.READY_DEADLINE_EXCEEDED, detail)
    if obs.canary_stats is None:
        return waiting
    measured = _measured(obs)
    breach = threshold_breach(
        obs.canary_stats, max_error_rate=spec.max_error_rate, max_p99_ms=spec.max_p99_ms
    )
    if breach is not None:
        return _rollback(state, obs, flight, breach[0], breach[1] + measured)
    if obs.route_problem is not None:
        where = f"step {flight.step + 1}/{len(spec.steps)} ({flight.weight}%)"
        return _held(spec, state, obs, f"{flight.target.name} held at {where}: {obs.route_problem}")
    if not step_served(spec, flight, now):
        return waiting
    if flight.step + 1 < len(spec.steps):
        step = flight.step + 1
        nxt = InFlight(flight.target, step, spec.steps[step], now)
        return _canary_plan(State(state.current, nxt), obs, "CanaryStep", spec, measured)
    return _promote(spec, state, flight, obs, measured)


def _measured(obs: Observed) -> str:
    canary = obs.canary_stats.describe() if obs.canary_stats else "not measured"
    stable = obs.stable_stats.describe() if obs.stable_stats else "not measured"
    return f"; canary: {canary}; stable: {stable}"


def _promote(
    spec: RolloutSpec, state: State, flight: InFlight, obs: Observed, measured: str
) -> Plan:
    message = f"{flight.target.name} passed every step and becomes stable{measured}"
    return Plan(
        State(flight.target, replace(flight, serving_since=None)),
        (flight.target, _replicas(obs, obs.total)),
        (flight.target, split(spec, obs, 100).canary),
        (True, c.PROMOTING, message),
        (Event("Normal", "Promoted", message),),
    )


def _promoting(spec: RolloutSpec, state: State, obs: Observed) -> Plan:
    current = state.current
    assert current is not None
    wanted = obs.stable.replicas if obs.autoscaled and obs.stable else obs.total
    stable = (current, _replicas(obs, obs.total))
    if obs.stable is not None and obs.stable.serves(current.version, wanted):
        message = f"{current.name} serves all traffic from the stable Deployment; canary removed"
        return Plan(
            State(current),
            stable,
            None,
            (False, c.ROLLOUT_COMPLETE, message),
            (Event("Normal", "RolloutComplete", message),),
        )
    progress = (True, c.PROMOTING, f"stable Deployment rolling to {current.name}")
    return Plan(state, stable, (current, split(spec, obs, 100).canary), progress)
