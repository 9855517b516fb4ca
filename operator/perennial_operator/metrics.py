"""The operator's own Prometheus metrics (prefix perennial_operator_)."""

from __future__ import annotations

import contextlib
import threading
from collections import Counter as Tally
from collections import OrderedDict
from collections.abc import Iterator

from prometheus_client import Counter, Gauge, Histogram

RECONCILES = Counter(
    "perennial_operator_reconciles_total", "Reconciles by kind and outcome", ["kind", "outcome"]
)
RECONCILE_SECONDS = Histogram(
    "perennial_operator_reconcile_duration_seconds",
    "Time spent in one reconcile, by kind",
    ["kind"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
TRAININGJOBS = Gauge(
    "perennial_operator_trainingjobs", "TrainingJobs by phase, as last seen", ["phase"]
)
MODELS_REGISTERED = Counter(
    "perennial_operator_models_registered_total", "ModelVersions registered", ["model"]
)
STAGE_CHANGES = Counter(
    "perennial_operator_stage_changes_total", "ModelVersion stage changes", ["model", "stage"]
)
COMPUTEPOOL_NODES = Gauge(
    "perennial_operator_computepool_nodes",
    "ComputePool size by state (registered, ready, desired)",
    ["pool", "state"],
)
COMPUTEPOOL_PENDING_PODS = Gauge(
    "perennial_operator_computepool_pending_pods",
    "Unschedulable pods that select the pool",
    ["pool"],
)
COMPUTEPOOL_SCALE_ACTIONS = Counter(
    "perennial_operator_computepool_scale_actions_total",
    "Scale actions by direction (up, down) and outcome (ok, error)",
    ["pool", "direction", "outcome"],
)
COMPUTEPOOL_DECISION_SECONDS = Histogram(
    "perennial_operator_computepool_unschedulable_to_decision_seconds",
    "From a pod's PodScheduled=False (Unschedulable) transition to the scale-up decision",
    ["pool"],
    buckets=(0.25, 0.5, 1, 1.5, 2, 3, 5, 10, 20, 30, 60),
)
ROLLOUTS = Counter(
    "perennial_operator_rollouts_total",
    "InferenceService rollout outcomes (promoted, rolled_back, superseded, abandoned, rolled_out)",
    ["namespace", "inferenceservice", "outcome"],
)
CANARY_WEIGHT = Gauge(
    "perennial_operator_canary_weight",
    "Percent of an InferenceService's traffic the operator sends to the canary (0: none)",
    ["namespace", "inferenceservice"],
)
DRIFT_PSI = Gauge(
    "perennial_operator_drift_psi",
    "Largest per-feature PSI of an InferenceService's current version, as last measured",
    ["namespace", "inferenceservice"],
)
DRIFT_FEATURE_PSI = Gauge(
    "perennial_operator_drift_feature_psi",
    "PSI of one input feature of an InferenceService's current version, as last measured "
    "(the features in status.drift.features, at most 20)",
    ["namespace", "inferenceservice", "feature"],
)
TRAININGJOB_OUTCOMES = Counter(
    "perennial_operator_trainingjob_outcomes_total",
    "TrainingJobs that finished, by outcome (Succeeded, Failed) and the condition's reason",
    ["namespace", "outcome", "reason"],
)
COMPUTEPOOL_MAX_NODES = Gauge(
    "perennial_operator_computepool_max_nodes", "A ComputePool's spec.maxNodes", ["pool"]
)
RETRAIN_TRIGGERS = Counter(
    "perennial_operator_retrain_triggers_total",
    "RetrainPolicy triggers that started a TrainingJob, by reason (Schedule, Drift, Performance)",
    ["reason"],
)
PROMOTION_DECISIONS = Counter(
    "perennial_operator_promotion_decisions_total",
    "RetrainPolicy gate outcomes, by the Promoted condition's reason",
    ["reason"],
)


class TrainingJobPhases:
    """perennial_operator_trainingjobs{phase}: how many TrainingJobs are in each phase, as
    last seen. Made once at start-up (handlers/trainingjob.py).

    Every phase ever published is set again, so one nobody is in any more reads 0. A sync
    runs inside `syncing()`; a job deleted while syncs are in flight leaves a tombstone, so
    one of them that read the job just before its deletion and publishes after it cannot
    add it back. The tombstone goes when the last sync that began before the deletion ends:
    a sync that begins after it finds the job gone (its read is a 404). So nothing is kept
    per deleted job once the syncs of the moment are over (issue 18: 5,000 tombstones kept
    for good, each a uid born among the burst's event bodies, held pages of the heap)."""

    def __init__(self, gauge: Gauge = TRAININGJOBS) -> None:
        self._gauge = gauge
        self._lock = threading.Lock()
        self._phases: dict[str, str] = {}  # uid -> phase
        # Kept as the phases change: counting every job again on each publish made a burst
        # of N TrainingJobs cost N^2 (2 % of the operator's busy CPU at 5,000, issue 18).
        self._counts: Tally[str] = Tally()
        self._issued = 0  # tickets of the syncs begun so far
        self._in_flight: set[int] = set()
        # uid -> the last ticket issued when it was deleted; in deletion order, so the
        # stamps never decrease and the expired ones are at the front.
        self._deleted: OrderedDict[str, int] = OrderedDict()

    @contextlib.contextmanager
    def syncing(self) -> Iterator[None]:
        """Around one sync that may publish (from before it reads the job)."""
        with self._lock:
            self._issued += 1
            ticket = self._issued
            self._in_flight.add(ticket)
        try:
            yield
        finally:
            with self._lock:
                self._in_flight.discard(ticket)
                self._prune()

    def publish(self, uid: str, phase: str) -> None:
        with self._lock:
            if uid in self._deleted:
                return
            old = self._phases.get(uid)
            if old == phase:
                return
            self._phases[uid] = phase
            self._add(old, -1)
            self._add(phase, +1)

    def forget(self, uid: str) -> None:
        """The job was deleted: it leaves the gauge, now and for good."""
        with self._lock:
            self._add(self._phases.pop(uid, None), -1)
            if self._in_flight:  # else no sync can publish it again
                self._deleted.pop(uid, None)
                self._deleted[uid] = self._issued

    def tombstones(self) -> int:
        """Deleted jobs still remembered: only while a sync begun before their deletion runs."""
        with self._lock:
            return len(self._deleted)

    def _prune(self) -> None:
        # A tombstone stamped s guards against the syncs with tickets up to s.
        oldest = min(self._in_flight, default=None)
        while self._deleted:
            uid, stamp = next(iter(self._deleted.items()))
            if oldest is not None and oldest <= stamp:
                break
            del self._deleted[uid]

    def _add(self, phase: str | None, delta: int) -> None:
        # A phase nobody is in any more stays in the counts at 0, so its series reads 0.
        if phase is not None:
            self._counts[phase] += delta
            self._gauge.labels(phase=phase).set(self._counts[phase])


def _remove_series(metric: Gauge, **match: str) -> None:
    """Remove every series of `metric` whose labels include `match` (all its other labels)."""
    for family in metric.collect():
        for sample in family.samples:
            if all(sample.labels.get(k) == v for k, v in match.items()):
                try:  # a sample's labels come in the metric's label order, as remove() wants
                    metric.remove(*sample.labels.values())
                except KeyError:  # removed by a concurrent call
                    pass


def forget_inferenceservice(namespace: str, name: str) -> None:
    """A deleted InferenceService leaves the gauges (a dashboard must not show it forever)."""
    for gauge in (CANARY_WEIGHT, DRIFT_PSI, DRIFT_FEATURE_PSI):
        _remove_series(gauge, namespace=namespace, inferenceservice=name)


def forget_computepool(name: str) -> None:
    """A deleted ComputePool leaves the gauges."""
    for gauge in (COMPUTEPOOL_NODES, COMPUTEPOOL_PENDING_PODS, COMPUTEPOOL_MAX_NODES):
        _remove_series(gauge, pool=name)
