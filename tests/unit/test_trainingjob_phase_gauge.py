"""The TrainingJobs-by-phase gauge: deleted jobs leave it, even when a sync ends late."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from prometheus_client import CollectorRegistry, Gauge

from perennial_operator.metrics import TrainingJobPhases

pytestmark = pytest.mark.unit


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def phases(registry: CollectorRegistry) -> TrainingJobPhases:
    gauge = Gauge("perennial_operator_trainingjobs", "by phase", ["phase"], registry=registry)
    return TrainingJobPhases(gauge, max_tombstones=2)


def count(registry: CollectorRegistry, phase: str) -> float | None:
    return registry.get_sample_value("perennial_operator_trainingjobs", {"phase": phase})


def test_a_job_moving_on_leaves_its_old_phase_and_a_deleted_job_leaves_the_gauge(registry, phases):
    phases.publish("a", "Training")
    phases.publish("b", "Training")
    assert count(registry, "Training") == 2
    phases.publish("a", "Succeeded")
    assert (count(registry, "Training"), count(registry, "Succeeded")) == (1, 1)
    phases.forget("a")
    assert (count(registry, "Training"), count(registry, "Succeeded")) == (1, 0)
    # A sync that read the job just before it was deleted and publishes afterwards.
    phases.publish("a", "Succeeded")
    assert count(registry, "Succeeded") == 0


def test_tombstones_are_bounded(registry, phases):
    for uid in ("a", "b", "c"):
        phases.forget(uid)
    phases.publish("a", "Pending")  # the oldest tombstone went: uids are never reused anyway
    phases.publish("c", "Pending")
    assert count(registry, "Pending") == 1


def test_the_counts_kept_as_phases_change_match_a_recount(registry):
    # The gauge is kept incrementally (no recount per publish); after any sequence of
    # publishes and deletions it must equal counting the live jobs' last phases.
    gauge = Gauge("perennial_operator_trainingjobs", "by phase", ["phase"], registry=registry)
    phases = TrainingJobPhases(gauge)
    rng = random.Random(18)
    names = ("Pending", "Validating", "Training", "Succeeded", "Failed")
    live: dict[str, str] = {}
    gone: set[str] = set()
    for step in range(2_000):
        uid = f"job-{rng.randrange(40)}"
        if rng.random() < 0.1:
            phases.forget(uid)
            live.pop(uid, None)
            gone.add(uid)
        else:
            phase = rng.choice(names)
            phases.publish(uid, phase)
            if uid not in gone:  # a deleted job stays out
                live[uid] = phase
        if step % 97 == 0 or step == 1_999:
            truth = Counter(live.values())
            seen = {n: count(registry, n) or 0 for n in names}
            assert seen == {n: truth.get(n, 0) for n in names}
