"""RetrainPolicy use case: gather -> decide -> act. Called by the policy's own triggers, a
timer, and events of its TrainingJobs and InferenceService; safe to run any number of
times, from any state, after any restart."""

from __future__ import annotations

import datetime as dt
import threading
import time
from typing import Any

from perennial_operator import metrics
from perennial_operator.api import conditions as c
from perennial_operator.api.group import API_VERSION
from perennial_operator.decide.conditions import get_condition
from perennial_operator.decide.retrainpolicy import Observed, Plan, Start, retrainpolicy_plan
from perennial_operator.desired import retrainpolicy as desired
from perennial_operator.desired.modelversion import stage_change
from perennial_operator.k8s.errors import AlreadyExists
from perennial_operator.k8s.resources import Kube

KIND = "RetrainPolicy"
_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


def _lock(uid: str) -> threading.Lock:
    # The timer and the job and service events may fire together for one policy.
    with _locks_guard:
        return _locks.setdefault(uid, threading.Lock())


def sync_retrainpolicy(kube: Kube, namespace: str, name: str) -> Plan | None:
    started = time.monotonic()
    policy = kube.get(API_VERSION, KIND, namespace, name)
    if policy is None or policy["metadata"].get("deletionTimestamp"):
        return None
    with _lock(policy["metadata"]["uid"]):
        # Re-read under the lock: the status must show what a previous call recorded.
        policy = kube.get(API_VERSION, KIND, namespace, name) or policy
        plan = _sync_locked(kube, policy, dt.datetime.now(dt.UTC))
    metrics.RECONCILE_SECONDS.labels(kind=KIND).observe(time.monotonic() - started)
    metrics.RECONCILES.labels(kind=KIND, outcome=str(plan.status.get("phase"))).inc()
    return plan


def _observe(kube: Kube, policy: dict[str, Any]) -> Observed:
    ns, spec = policy["metadata"]["namespace"], policy["spec"]
    isvc = kube.get(API_VERSION, "InferenceService", ns, spec["inferenceService"])
    job_name = (policy.get("status") or {}).get("lastTrainingJob")
    job = kube.get(API_VERSION, "TrainingJob", ns, job_name) if job_name else None
    return Observed(isvc, job)


def _sync_locked(kube: Kube, policy: dict[str, Any], now: dt.datetime) -> Plan:
    plan = retrainpolicy_plan(policy, _observe(kube, policy), now=now)
    if plan.start is not None:
        # The trigger is in status before the job exists: a crash in between leaves a
        # recorded trigger whose job the next call creates under the same name.
        kube.patch_changed_status(policy, plan.status)
        _create_job(kube, policy, plan.start)
        if any(e.reason == "Triggered" for e in plan.events):  # not when re-creating
            metrics.RETRAIN_TRIGGERS.labels(reason=plan.start.reason).inc()
    if plan.promote is not None:
        _promote(kube, policy, *plan.promote)
    # Events before the status that moves past them: a crash in between repeats an Event
    # rather than losing it.
    for event in plan.events:
        kube.event(policy, event.type, event.reason, event.message)
    if any(e.reason in ("Promoted", "NotPromoted", "AwaitingApproval") for e in plan.events):
        promoted = get_condition(plan.status.get("conditions") or [], c.PROMOTED) or {}
        metrics.PROMOTION_DECISIONS.labels(reason=str(promoted.get("reason"))).inc()
    kube.patch_changed_status(policy, plan.status)
    return plan


def _create_job(kube: Kube, policy: dict[str, Any], start: Start) -> None:
    ns, name = policy["metadata"]["namespace"], policy["metadata"]["name"]
    selector = desired.trigger_selector(name, start.trigger)
    if kube.list(API_VERSION, "TrainingJob", ns, selector):
        return  # this trigger's job already exists
    try:
        kube.create(desired.trainingjob_for(policy, start.trigger, start.baseline, start.reason))
    except AlreadyExists:
        pass


def _promote(kube: Kube, policy: dict[str, Any], modelversion: str, stage: str) -> None:
    """Set the candidate's stage; the ModelVersion reconciler archives the old holder and
    the InferenceService, tracking that stage, rolls the candidate out."""
    kube.apply(stage_change(policy["metadata"]["namespace"], modelversion, stage))
