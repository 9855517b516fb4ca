"""RetrainPolicy use case: gather -> decide -> act. Called by the policy's own triggers, a
timer, and events of its TrainingJobs and InferenceService; safe to run any number of
times, from any state, after any restart."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from perennial_operator import metrics
from perennial_operator.api import conditions as c
from perennial_operator.api.group import API_VERSION, LABEL_RETRAINPOLICY, LABEL_TRIGGER
from perennial_operator.config import OperatorConfig
from perennial_operator.decide.conditions import get_condition
from perennial_operator.decide.retrainpolicy.history import jobs_to_prune
from perennial_operator.decide.retrainpolicy.newdata import ProbeObs
from perennial_operator.decide.retrainpolicy.plan import Observed, Plan, Start, retrainpolicy_plan
from perennial_operator.decide.trainingjob import observed
from perennial_operator.desired import retrainpolicy as desired
from perennial_operator.desired import retrainpolicy_newdata as desired_probe
from perennial_operator.desired.modelversion import stage_change
from perennial_operator.k8s.errors import AlreadyExists
from perennial_operator.k8s.kube import KubeApi, patch_changed_status
from perennial_operator.reconcile.locks import KeyedLocks

KIND = "RetrainPolicy"


def sync_retrainpolicy(
    kube: KubeApi, namespace: str, name: str, config: OperatorConfig, locks: KeyedLocks
) -> Plan | None:
    started = time.monotonic()
    # The timer and the job and service events may fire together for one policy.
    with locks.hold(f"{KIND}/{namespace}/{name}"):
        # Read under the lock: the status must show what a previous call recorded.
        policy = kube.get(API_VERSION, KIND, namespace, name)
        if policy is None or policy["metadata"].get("deletionTimestamp"):
            return None
        plan = _sync_locked(kube, policy, dt.datetime.now(dt.UTC), config)
    metrics.RECONCILE_SECONDS.labels(kind=KIND).observe(time.monotonic() - started)
    metrics.RECONCILES.labels(kind=KIND, outcome=str(plan.status.get("phase"))).inc()
    return plan


def _observe(kube: KubeApi, policy: dict[str, Any]) -> Observed:
    ns, spec = policy["metadata"]["namespace"], policy["spec"]
    isvc = kube.get(API_VERSION, "InferenceService", ns, spec["inferenceService"])
    job_name = (policy.get("status") or {}).get("lastTrainingJob")
    job = kube.get(API_VERSION, "TrainingJob", ns, job_name) if job_name else None
    started = kube.list(
        API_VERSION, "TrainingJob", ns, f"{LABEL_RETRAINPOLICY}={policy['metadata']['name']}"
    )
    recent = tuple(str((j["metadata"].get("labels") or {}).get(LABEL_TRIGGER, "")) for j in started)
    return Observed(
        isvc, job, _serving(kube, policy, isvc), _probe(kube, policy), recent_triggers=recent
    )


def _serving(
    kube: KubeApi, policy: dict[str, Any], isvc: dict[str, Any] | None
) -> dict[str, Any] | None:
    """The serving ModelVersion, whose lineage the newData trigger (and a probe in flight,
    should the trigger have been removed meanwhile) compares with."""
    current = ((isvc or {}).get("status") or {}).get("currentModelVersion")
    wanted = (policy["spec"].get("triggers") or {}).get("newData") is not None or (
        (policy.get("status") or {}).get("newData") or {}
    ).get("probeJob")
    if not current or not wanted:
        return None
    return kube.get(API_VERSION, "ModelVersion", policy["metadata"]["namespace"], current)


def _probe(kube: KubeApi, policy: dict[str, Any]) -> ProbeObs | None:
    """The probe in flight; its pods (for the termination message) once it finished."""
    name = ((policy.get("status") or {}).get("newData") or {}).get("probeJob")
    if not name:
        return None
    ns = policy["metadata"]["namespace"]
    job = kube.get("batch/v1", "Job", ns, name)
    if job is None:
        return ProbeObs(name, None)
    seen = observed.job_obs(job)
    if not (seen.complete or seen.failure):
        return ProbeObs(name, seen)
    pods = kube.list("v1", "Pod", ns, desired_probe.probe_selector(name))
    return ProbeObs(name, seen, tuple(observed.pod_obs(p) for p in pods))


def _sync_locked(
    kube: KubeApi, policy: dict[str, Any], now: dt.datetime, config: OperatorConfig
) -> Plan:
    plan = retrainpolicy_plan(policy, _observe(kube, policy), now=now)
    # Events before the status that moves past them: a crash in between repeats an Event
    # rather than losing it.
    for event in plan.events:
        kube.event(policy, event.type, event.reason, event.message)
    if plan.start is not None:
        # The trigger is in status before the job exists: a crash in between leaves a
        # recorded trigger whose job the next call creates under the same name.
        patch_changed_status(kube, policy, plan.status)
        _create_job(kube, policy, plan.start)
        if any(e.reason == "Triggered" for e in plan.events):  # not when re-creating
            metrics.RETRAIN_TRIGGERS.labels(reason=plan.start.reason).inc()
    if plan.promote is not None:
        _promote(kube, policy, *plan.promote)
    if plan.probe is not None:
        # Named in status first: a crash before the create leaves a name with no Job, which
        # the next call forgets (and probes again), never a second probe in flight.
        patch_changed_status(kube, policy, plan.status)
        _create_probe(kube, policy, plan.probe, config)
    if any(e.reason in ("Promoted", "NotPromoted", "AwaitingApproval") for e in plan.events):
        promoted = get_condition(plan.status.get("conditions") or [], c.PROMOTED) or {}
        metrics.PROMOTION_DECISIONS.labels(reason=str(promoted.get("reason"))).inc()
    patch_changed_status(kube, policy, plan.status)
    _prune_history(kube, policy)
    return plan


def _prune_history(kube: KubeApi, policy: dict[str, Any]) -> None:
    """Delete finished TrainingJobs beyond spec.historyLimit (their Job and ConfigMap go
    with them by owner reference; the ModelVersions they registered stay)."""
    ns, name = policy["metadata"]["namespace"], policy["metadata"]["name"]
    jobs = kube.list(API_VERSION, "TrainingJob", ns, f"{LABEL_RETRAINPOLICY}={name}")
    for job in jobs_to_prune(policy, jobs):
        kube.delete(API_VERSION, "TrainingJob", ns, job)  # a 404 is fine: already gone


def _create_job(kube: KubeApi, policy: dict[str, Any], start: Start) -> None:
    ns, name = policy["metadata"]["namespace"], policy["metadata"]["name"]
    selector = desired.trigger_selector(name, start.trigger)
    if kube.list(API_VERSION, "TrainingJob", ns, selector):
        return  # this trigger's job already exists
    try:
        kube.create(desired.trainingjob_for(policy, start.trigger, start.baseline, start.reason))
    except AlreadyExists:
        pass


def _create_probe(kube: KubeApi, policy: dict[str, Any], name: str, config: OperatorConfig) -> None:
    kube.apply(desired_probe.probe_configmap(policy))  # the template as it is now
    try:
        kube.create(desired_probe.probe_job(policy, name, config))
    except AlreadyExists:
        pass


def _promote(kube: KubeApi, policy: dict[str, Any], modelversion: str, stage: str) -> None:
    """Set the candidate's stage; the ModelVersion reconciler archives the old holder and
    the InferenceService, tracking that stage, rolls the candidate out."""
    kube.apply(stage_change(policy["metadata"]["namespace"], modelversion, stage))
