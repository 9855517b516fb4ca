"""RetrainPolicy, pure: from the policy, its InferenceService and its last TrainingJob, the
next status and at most one action (start a TrainingJob, or promote a candidate).

The phase is the state machine, kept in status so a restarted operator resumes it:
Idle/Suspended -> (trigger) Training -> (job Succeeded) Evaluating -> gate -> Promoting or
Idle. A trigger is recorded in status (lastTrigger, lastTrainingJob) before the job is
created; while the phase is Training a missing job is (re)created under the same name.

The newData trigger needs a probe (a one-pod Job that hashes the dataset): a finished probe
is recorded in any phase; a new one starts only when an idle policy could act on its result
(nothing holds it back, no other trigger fired) and pollSeconds passed since the last.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from perennial_operator.api import conditions as c
from perennial_operator.api.names import probe_job_name, retrain_trainingjob_name, trigger_id
from perennial_operator.api.timestamps import format_time, parse_time
from perennial_operator.decide.conditions import Condition, get_condition, set_condition
from perennial_operator.decide.events import Event
from perennial_operator.decide.kstatus import Health, with_health
from perennial_operator.decide.retrainpolicy.newdata import (
    ProbeObs,
    after_probe,
    checked,
    new_data_arrived,
    poll_seconds,
    probe_due,
    probe_result,
    record_of,
    replaced,
    triggered,
)
from perennial_operator.decide.retrainpolicy.promotion import Verdict, gate, gate_metric
from perennial_operator.decide.retrainpolicy.schedule import next_fire, schedule_due, valid_schedule
from perennial_operator.decide.retrainpolicy.triggers import (
    NEW_DATA,
    Trigger,
    fired_trigger,
    hold,
    recent_trigger_ids,
)

IDLE, TRAINING, EVALUATING, PROMOTING, SUSPENDED = (
    "Idle",
    "Training",
    "Evaluating",
    "Promoting",
    "Suspended",
)


@dataclass(frozen=True)
class Observed:
    isvc: Mapping[str, Any] | None
    job: Mapping[str, Any] | None  # the TrainingJob named in status.lastTrainingJob
    serving: Mapping[str, Any] | None = None  # the serving ModelVersion (read for newData)
    probe: ProbeObs | None = None  # the probe Job named in status.newData.probeJob
    recent_triggers: tuple[str, ...] = ()  # trigger ids of the policy's TrainingJobs


@dataclass(frozen=True)
class Start:
    """Create (or, after a crash, re-create) this TrainingJob."""

    name: str
    trigger: str
    reason: str
    baseline: str


@dataclass
class Plan:
    status: dict[str, Any]
    start: Start | None = None
    promote: tuple[str, str] | None = None  # (ModelVersion, stage)
    probe: str | None = None  # create this newData probe Job (already named in status)
    events: list[Event] = field(default_factory=list)

    def condition(
        self, type_: str, ok: bool, reason: str, message: str, *, gen: int, now: str
    ) -> None:
        self.status["conditions"] = set_condition(
            self.status.get("conditions") or [],
            type_=type_,
            status=ok,
            reason=reason,
            message=message,
            generation=gen,
            now=now,
        )


def retrainpolicy_plan(policy: Mapping[str, Any], obs: Observed, *, now: dt.datetime) -> Plan:
    spec, gen = policy["spec"], int(policy["metadata"].get("generation", 1))
    previous = dict(policy.get("status") or {})
    plan = Plan({**previous, "observedGeneration": gen})
    due = _schedule(plan, spec, previous, gen, now)
    _record_probe(plan, spec, obs, gen, now)
    phase = previous.get("phase")
    if phase in (TRAINING, EVALUATING) and previous.get("lastTrainingJob"):
        _follow_job(plan, policy, obs, gen, now)
    elif phase == PROMOTING and _rolling_out(previous, obs.isvc):
        pass
    else:
        _idle(plan, policy, obs, due, gen, now)
    conds = plan.status.get("conditions") or []
    health = policy_health(spec, plan.status, conds)
    plan.status["conditions"] = with_health(conds, health, generation=gen, now=format_time(now))
    return plan


# What a policy cannot work past without a change of its spec or its dataset.
CANNOT_WORK = (c.INVALID_SCHEDULE, c.BAD_SPEC, c.DATASET_UNAVAILABLE, c.PROBE_FAILED)
WAITING_FOR_SERVICE = (c.INFERENCESERVICE_NOT_FOUND, c.NO_SERVING_VERSION)


def policy_health(
    spec: Mapping[str, Any], status: Mapping[str, Any], conds: list[Condition]
) -> Health:
    """Ready while the policy does its job (waiting, training, evaluating, promoting, or
    suspended as asked); not while its InferenceService has nothing to compare with;
    Stalled when its schedule or its dataset cannot work."""
    cron = (spec.get("triggers") or {}).get("schedule")
    if cron and not valid_schedule(str(cron)):
        return Health.stuck(c.INVALID_SCHEDULE, f"schedule {cron!r} is not a valid cron expression")
    checked_ = get_condition(conds, c.DATASET_CHECKED) or {}
    if checked_.get("status") == "False" and checked_.get("reason") in CANNOT_WORK:
        return Health.stuck(str(checked_["reason"]), str(checked_.get("message") or ""))
    trig = get_condition(conds, c.TRIGGERED) or {}
    if trig.get("status") == "False" and trig.get("reason") in WAITING_FOR_SERVICE:
        return Health(False, str(trig["reason"]), str(trig.get("message") or ""))
    phase = str(status.get("phase") or IDLE)
    if phase == SUSPENDED:
        return Health(True, c.SUSPENDED, "spec.suspend is true: no trigger starts a TrainingJob")
    job = status.get("lastTrainingJob")
    doing = {
        IDLE: "waiting for a trigger",
        TRAINING: f"training {job}",
        EVALUATING: f"evaluating the candidate of {job}",
        PROMOTING: f"rolling out {(status.get('lastPromotion') or {}).get('modelVersion')}",
    }
    return Health(True, phase, doing.get(phase, phase))


def _schedule(
    plan: Plan, spec: Mapping[str, Any], previous: Mapping[str, Any], gen: int, now: dt.datetime
) -> bool:
    """Is the schedule due? Also moves nextScheduledTime on. A fire that finds a job running,
    a cooldown or suspend is skipped, as a CronJob with concurrencyPolicy Forbid does."""
    cron = (spec.get("triggers") or {}).get("schedule")
    if not cron or not valid_schedule(str(cron)):
        plan.status["nextScheduledTime"] = None
        if cron:
            plan.condition(
                c.TRIGGERED,
                False,
                c.INVALID_SCHEDULE,
                f"schedule {cron!r} is not a valid cron expression",
                gen=gen,
                now=format_time(now),
            )
        return False
    recorded = parse_time(previous.get("nextScheduledTime"))
    if previous.get("observedGeneration") != gen:  # the schedule may have been edited
        recorded = None
    due = schedule_due(recorded, now)
    if recorded is None or due:
        recorded = next_fire(str(cron), now)
    plan.status["nextScheduledTime"] = format_time(recorded)
    return due


def _idle(
    plan: Plan, policy: Mapping[str, Any], obs: Observed, due: bool, gen: int, now: dt.datetime
) -> None:
    spec, stamp = policy["spec"], format_time(now)
    held = hold(spec, plan.status, obs.isvc, now, obs.recent_triggers)
    plan.status["phase"] = SUSPENDED if held and held.reason == c.SUSPENDED else IDLE
    isvc_status, triggers = (obs.isvc or {}).get("status") or {}, spec.get("triggers") or {}
    new_data = new_data_arrived(triggers, record_of(plan.status), obs.serving)
    trigger = fired_trigger(triggers, isvc_status, due, new_data)
    if held is not None:
        if trigger is not None or held.reason != c.COOLING_DOWN:
            plan.condition(c.TRIGGERED, False, held.reason, held.message, gen=gen, now=stamp)
        return
    if trigger is None:
        invalid = plan.status.get("nextScheduledTime") is None and spec["triggers"].get("schedule")
        if not invalid:
            plan.condition(
                c.TRIGGERED,
                False,
                c.WAITING_FOR_TRIGGER,
                "no trigger has fired since the last TrainingJob",
                gen=gen,
                now=stamp,
            )
        _start_probe(plan, policy, now)
        return
    _start(plan, policy, trigger, str(isvc_status["currentModelVersion"]), gen, now)


def _start(
    plan: Plan,
    policy: Mapping[str, Any],
    trigger: Trigger,
    baseline: str,
    gen: int,
    now: dt.datetime,
) -> None:
    tid, stamp = trigger_id(now), format_time(now)
    name = retrain_trainingjob_name(policy["metadata"]["name"], tid)
    plan.status.update(
        phase=TRAINING,
        lastTrigger={"reason": trigger.reason, "time": stamp, "detail": trigger.detail},
        lastTrainingJob=name,
        candidateModelVersion=None,
        recentTriggers=recent_trigger_ids(plan.status, now, tid),
    )
    if trigger.reason == NEW_DATA:
        plan.status["newData"] = triggered(record_of(plan.status))
    plan.condition(c.TRIGGERED, True, trigger.reason, trigger.detail, gen=gen, now=stamp)
    plan.start = Start(name, tid, trigger.reason, baseline)
    plan.events += [
        Event("Normal", "Triggered", f"{trigger.reason}: {trigger.detail}"),
        Event("Normal", "TrainingStarted", f"created TrainingJob {name} with baseline {baseline}"),
    ]


def _record_probe(
    plan: Plan, spec: Mapping[str, Any], obs: Observed, gen: int, now: dt.datetime
) -> None:
    """A finished probe: record what it found (or a Warning and the reason it failed)."""
    record, probe = record_of(plan.status), obs.probe
    if probe is None or not record.get("probeJob") or probe.name != record["probeJob"]:
        return
    if probe.job is None:  # never created (a crash in between) or already gone: forget it
        plan.status["newData"] = replaced(
            record, {k: v for k, v in record.items() if k != "probeJob"}
        )
        return
    found = probe_result(probe)
    if found is None:
        return  # still running
    stamp = format_time(now)
    ok, reason, message = checked(
        probe.name, found, obs.serving, record, poll_seconds(spec.get("triggers") or {})
    )
    plan.status["newData"] = after_probe(record, found, stamp)
    plan.condition(c.DATASET_CHECKED, ok, reason, message, gen=gen, now=stamp)
    if not ok:
        plan.events.append(Event("Warning", "NewDataProbeFailed", message))


def _start_probe(plan: Plan, policy: Mapping[str, Any], now: dt.datetime) -> None:
    """Probe the dataset when pollSeconds passed; the name goes to status before the Job is
    created, so a probe in flight is never started twice."""
    record = record_of(plan.status)
    if not probe_due(policy["spec"].get("triggers") or {}, record, now):
        return
    plan.probe = probe_job_name(policy["metadata"]["name"], trigger_id(now))
    plan.status["newData"] = {**record, "probeJob": plan.probe}


def _follow_job(
    plan: Plan, policy: Mapping[str, Any], obs: Observed, gen: int, now: dt.datetime
) -> None:
    status, job = plan.status, obs.job
    if job is None:  # recorded but never created (a crash in between): create it now
        last = status.get("lastTrigger") or {}
        when = parse_time(last.get("time")) or now
        baseline = ((obs.isvc or {}).get("status") or {}).get("currentModelVersion")
        if baseline:
            plan.start = Start(
                str(status["lastTrainingJob"]),
                trigger_id(when),
                str(last.get("reason", "")),
                str(baseline),
            )
        status["phase"] = TRAINING
        return
    job_status = job.get("status") or {}
    if job_status.get("phase") == "Failed":
        message = f"TrainingJob {job['metadata']['name']} failed; nothing to promote"
        _decided(plan, gen, now, c.TRAINING_FAILED, message, "Warning", "TrainingFailed")
    elif job_status.get("phase") == "Succeeded" and job_status.get("modelVersion"):
        _evaluate(plan, policy, obs, job_status, gen, now)
    else:  # Succeeded without a ModelVersion yet: registration is a moment away
        status["phase"] = EVALUATING if job_status.get("phase") == "Succeeded" else TRAINING


def _decided(
    plan: Plan,
    gen: int,
    now: dt.datetime,
    reason: str,
    message: str,
    event_type: str,
    event_reason: str,
) -> None:
    plan.status["phase"] = IDLE
    plan.condition(c.PROMOTED, False, reason, message, gen=gen, now=format_time(now))
    plan.events.append(Event(event_type, event_reason, message))


def _evaluate(
    plan: Plan,
    policy: Mapping[str, Any],
    obs: Observed,
    job_status: Mapping[str, Any],
    gen: int,
    now: dt.datetime,
) -> None:
    spec = policy["spec"]
    promotion = spec.get("promotion") or {}
    candidate = str(job_status["modelVersion"])
    plan.status["candidateModelVersion"] = candidate
    verdict = gate(
        gate_metric(promotion, spec["template"]),
        job_status.get("metrics") or {},
        job_status.get("baselineMetrics") or {},
        float(promotion.get("minImprovement", 0)),
    )
    if not verdict.promote:
        _decided(
            plan,
            gen,
            now,
            verdict.reason,
            f"{candidate} not promoted: {verdict.message}",
            "Normal",
            "NotPromoted",
        )
        return
    model = ((obs.isvc or {}).get("spec") or {}).get("model") or {}
    if promotion.get("mode", "Auto") == "Manual":
        message = (
            f"{candidate} passes the gate ({verdict.message}); promotion.mode is Manual: "
            f"set its spec.stage to promote it"
        )
        _decided(plan, gen, now, c.AWAITING_APPROVAL, message, "Normal", "AwaitingApproval")
    elif obs.isvc is None or model.get("version") is not None:
        message = (
            f"{candidate} passes the gate ({verdict.message}) but InferenceService "
            f"{spec['inferenceService']} pins a version (or is gone): not promoted; "
            "point spec.model.version at it by hand"
        )
        _decided(plan, gen, now, c.VERSION_PINNED, message, "Warning", "NotPromoted")
    else:
        _promote(plan, candidate, str(model.get("stage") or "Production"), verdict, gen, now)


def _promote(
    plan: Plan, candidate: str, stage: str, verdict: Verdict, gen: int, now: dt.datetime
) -> None:
    stamp = format_time(now)
    plan.promote = (candidate, stage)
    plan.status["phase"] = PROMOTING
    plan.status["lastPromotion"] = {
        "modelVersion": candidate,
        "time": stamp,
        "metric": verdict.metric,
        "baseline": verdict.baseline,
        "candidate": verdict.candidate,
    }
    message = f"{candidate} promoted to {stage}: {verdict.message}"
    plan.condition(c.PROMOTED, True, c.CANDIDATE_PROMOTED, message, gen=gen, now=stamp)
    plan.events.append(Event("Normal", "Promoted", message))


def _rolling_out(previous: Mapping[str, Any], isvc: Mapping[str, Any] | None) -> bool:
    """Promoting lasts while the service's canary carries the promoted version."""
    promoted = (previous.get("lastPromotion") or {}).get("modelVersion")
    canary = ((isvc or {}).get("status") or {}).get("canary") or {}
    return bool(promoted) and canary.get("modelVersion") == promoted
