"""RetrainPolicy triggers, pure: which one fires, and what holds it back.

Each check reads like a sentence and returns a Trigger (reason and the numbers behind it)
or None. The live numbers come from the InferenceService's status, written by its own
drift timer: status.drift {psi, samples} and status.liveMetric {name, value, samples}. The
newData check needs the policy's own probe record: it lives in retrainpolicy_newdata and is
passed in here to take its place in the order.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from perennial_operator.api import conditions as c
from perennial_operator.api.timestamps import format_time, parse_time

SCHEDULE = "Schedule"
DRIFT = "Drift"
PERFORMANCE = "Performance"
NEW_DATA = "NewData"


@dataclass(frozen=True)
class Trigger:
    reason: str
    detail: str


@dataclass(frozen=True)
class Hold:
    """Why no TrainingJob starts now: a condition reason and message."""

    reason: str
    message: str


def drift_above_threshold(
    triggers: Mapping[str, Any], isvc_status: Mapping[str, Any]
) -> Trigger | None:
    rule = triggers.get("drift")
    drift = isvc_status.get("drift") or {}
    if rule is None or not isinstance(drift.get("psi"), int | float):
        return None
    psi, samples = float(drift["psi"]), int(drift.get("samples") or 0)
    threshold, needed = float(rule.get("psi", 0.2)), int(rule.get("minSamples", 500))
    if samples < needed or psi <= threshold:
        return None
    return Trigger(DRIFT, f"psi={psi:.4g} > {threshold:.4g} over {samples} samples")


def performance_below_threshold(
    triggers: Mapping[str, Any], isvc_status: Mapping[str, Any]
) -> Trigger | None:
    rule = triggers.get("performance")
    live = isvc_status.get("liveMetric") or {}
    if rule is None or live.get("name") != rule.get("metric"):
        return None
    if not isinstance(live.get("value"), int | float):
        return None
    value, samples = float(live["value"]), int(live.get("samples") or 0)
    below, needed = float(rule["below"]), int(rule.get("minSamples", 200))
    if samples < needed or value >= below:
        return None
    detail = f"{rule['metric']}={value:.4g} < {below:.4g} over {samples} labelled samples"
    return Trigger(PERFORMANCE, detail)


def fired_trigger(
    triggers: Mapping[str, Any],
    isvc_status: Mapping[str, Any],
    schedule_due: bool,
    new_data: Trigger | None = None,
) -> Trigger | None:
    """The first trigger that fires: the live signals, then new data, then the calendar."""
    found = (
        drift_above_threshold(triggers, isvc_status)
        or performance_below_threshold(triggers, isvc_status)
        or new_data
    )
    if found is None and schedule_due:
        found = Trigger(SCHEDULE, f"schedule {triggers.get('schedule')!r} is due")
    return found


def cooldown_until(spec: Mapping[str, Any], status: Mapping[str, Any]) -> dt.datetime | None:
    last = parse_time((status.get("lastTrigger") or {}).get("time"))
    if last is None:
        return None
    return last + dt.timedelta(seconds=int(spec.get("cooldownSeconds", 3600)))


DEFAULT_DAILY_CAP = 6
MAX_RECENT_TRIGGERS = 1440  # the CRD's maximum of spec.maxTrainingJobsPerDay


def started_within_a_day(trigger_ids: Iterable[str], now: dt.datetime) -> int:
    """How many of these trigger ids (YYYYmmddHHMMSS, UTC: the policy's TrainingJobs'
    trigger label) fall in the 24 hours before `now`."""
    since, count = now - dt.timedelta(days=1), 0
    for tid in trigger_ids:
        try:
            when = dt.datetime.strptime(tid, "%Y%m%d%H%M%S").replace(tzinfo=dt.UTC)
        except ValueError:
            continue
        count += since < when <= now + dt.timedelta(minutes=5)  # a little clock skew
    return count


def _day_ago(tid: str, now: dt.datetime) -> bool:
    return started_within_a_day((tid,), now) == 1


def recent_trigger_ids(status: Mapping[str, Any], now: dt.datetime, new: str) -> list[str]:
    """status.recentTriggers after `new` started: the trigger ids of the last 24 hours.
    The TrainingJobs' labels alone undercount once spec.historyLimit has pruned jobs of the
    same day, and the status alone once it is lost: hold counts both."""
    kept = [str(t) for t in status.get("recentTriggers") or [] if _day_ago(str(t), now)]
    return sorted({*kept, new})[-MAX_RECENT_TRIGGERS:]


def hold(
    spec: Mapping[str, Any],
    status: Mapping[str, Any],
    isvc: Mapping[str, Any] | None,
    now: dt.datetime,
    recent_triggers: Iterable[str] = (),
) -> Hold | None:
    """What keeps an idle policy from starting a TrainingJob, checked in this order."""
    if spec.get("suspend"):
        return Hold(c.SUSPENDED, "spec.suspend is true: no trigger starts a TrainingJob")
    if isvc is None:
        return Hold(
            c.INFERENCESERVICE_NOT_FOUND,
            f"InferenceService {spec['inferenceService']} does not exist",
        )
    if not (isvc.get("status") or {}).get("currentModelVersion"):
        return Hold(
            c.NO_SERVING_VERSION,
            f"InferenceService {spec['inferenceService']} serves no ModelVersion yet, "
            "so there is no baseline to beat",
        )
    until = cooldown_until(spec, status)
    if until is not None and now < until:
        return Hold(c.COOLING_DOWN, f"cooldown: no new TrainingJob before {format_time(until)}")
    # A hard cap whatever the triggers say: a steered live metric or drift cannot make
    # the policy train without end (issue 20, finding 3).
    cap = int(spec.get("maxTrainingJobsPerDay", DEFAULT_DAILY_CAP))
    recorded = [str(t) for t in status.get("recentTriggers") or []]
    started = started_within_a_day({*recent_triggers, *recorded}, now)
    if started >= cap:
        return Hold(
            c.DAILY_LIMIT_REACHED,
            f"{started} TrainingJobs started in the last 24 hours "
            f"(spec.maxTrainingJobsPerDay is {cap})",
        )
    return None
