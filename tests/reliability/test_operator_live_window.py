"""Finding 3, the operator half (issue 20): one 300-row feedback request set liveMetric
accuracy to 0 and the RetrainPolicy then started 15 TrainingJobs in 15 cooldowns, because
liveMetric summed the pods' lifetime counters: the burst never left them. Judged over a
window (spec.monitoring.drift.windowSeconds), the burst counts once.

The loop below is the operator's, minus the API: every minute the drift timer's window
and live metric, every minute the policy's hold and trigger decisions, for 15 hours with
the default cooldown and window (an hour each) and the daily cap out of the way."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from perennial_operator.api.names import trigger_id
from perennial_operator.decide.monitoring.live_metric import live_metric
from perennial_operator.decide.monitoring.samples import Sample
from perennial_operator.decide.retrainpolicy.triggers import fired_trigger, hold
from perennial_operator.reconcile.inferenceservice.drift import windowed

pytestmark = pytest.mark.unit

HOUR = 3600
SPEC: dict[str, Any] = {
    "inferenceService": "churn",
    "cooldownSeconds": HOUR,
    "maxTrainingJobsPerDay": 1440,  # the cap is tested apart: here only the window holds
    "triggers": {"performance": {"metric": "accuracy", "below": 0.9, "minSamples": 200}},
}


def pod_counters(minute: int) -> list[Sample]:
    """One pod's lifetime counters: honest feedback, 2 a minute at 95 % accuracy, and one
    hostile request of 300 wrong labels in the first minute."""
    honest = 2 * minute
    right = honest - round(honest * 0.05)
    wrong = honest - right + (300 if minute >= 1 else 0)
    return [
        Sample("perennial_feedback_total", {"outcome": "correct", "version": "1"}, right),
        Sample("perennial_feedback_total", {"outcome": "incorrect", "version": "1"}, wrong),
    ]


def triggers_in_15_hours(windowed_metric: bool) -> list[str]:
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    status: dict[str, Any] = {}
    state = None
    started: list[str] = []
    for minute in range(15 * 60):
        now = start + dt.timedelta(minutes=minute)
        scraped = {"http://10.0.0.7:8080": pod_counters(minute)}
        if windowed_metric:
            starts = {"http://10.0.0.7:8080": 0.0}  # the pod started with the loop
            samples, state = windowed(state, 1, starts, scraped, minute * 60.0, HOUR)
        else:
            samples = scraped["http://10.0.0.7:8080"]
        isvc = {"status": {"currentModelVersion": "churn-v1", "liveMetric": live_metric(samples)}}
        if hold(SPEC, status, isvc, now, started) is not None:
            continue
        if fired_trigger(SPEC["triggers"], isvc["status"], schedule_due=False) is not None:
            started.append(trigger_id(now))
            status["lastTrigger"] = {"time": now.strftime("%Y-%m-%dT%H:%M:%SZ")}
    return started


def test_lifetime_counters_reproduce_the_issue():
    # The shape the issue reports: one TrainingJob per cooldown, as long as the pod lives.
    assert len(triggers_in_15_hours(windowed_metric=False)) == 15


def test_a_window_counts_the_burst_once():
    assert len(triggers_in_15_hours(windowed_metric=True)) == 1
