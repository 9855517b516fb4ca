"""The operator's own Prometheus metrics (prefix perennial_operator_)."""

from __future__ import annotations

import threading
from collections import Counter as Tally
from collections import OrderedDict

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

    Every phase ever published is set again, so one nobody is in any more reads 0. A deleted
    job leaves a tombstone (uids are never reused), so a sync that read the job just before
    its deletion and publishes after it cannot add it back."""

    def __init__(self, gauge: Gauge = TRAININGJOBS, max_tombstones: int = 10_000) -> None:
        self._gauge, self._max_tombstones = gauge, max_tombstones
        self._lock = threading.Lock()
        self._phases: dict[str, str] = {}  # uid -> phase
        # Kept as the phases change: counting every job again on each publish made a burst
        # of N TrainingJobs cost N^2 (2 % of the operator's busy CPU at 5,000, issue 18).
        self._counts: Tally[str] = Tally()
        self._deleted: OrderedDict[str, None] = OrderedDict()

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
            self._deleted[uid] = None
            while len(self._deleted) > self._max_tombstones:
                self._deleted.popitem(last=False)

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
