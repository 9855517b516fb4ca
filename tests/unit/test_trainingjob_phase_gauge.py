"""The TrainingJobs-by-phase gauge: deleted jobs leave it, even when a sync ends late."""

from __future__ import annotations

import random
from collections import Counter
from contextlib import AbstractContextManager

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
    return TrainingJobPhases(gauge)


def count(registry: CollectorRegistry, phase: str) -> float | None:
    return registry.get_sample_value("perennial_operator_trainingjobs", {"phase": phase})


def test_a_job_moving_on_leaves_its_old_phase_and_a_deleted_job_leaves_the_gauge(registry, phases):
    phases.publish("a", "Training")
    phases.publish("b", "Training")
    assert count(registry, "Training") == 2
    phases.publish("a", "Succeeded")
    assert (count(registry, "Training"), count(registry, "Succeeded")) == (1, 1)
    with phases.syncing():  # a sync that read the job just before it was deleted
        phases.forget("a")
        assert (count(registry, "Training"), count(registry, "Succeeded")) == (1, 0)
        phases.publish("a", "Succeeded")  # ... and publishes afterwards
    assert count(registry, "Succeeded") == 0


def test_a_tombstone_lasts_as_long_as_the_syncs_begun_before_the_deletion(registry, phases):
    older, newer = phases.syncing(), phases.syncing()
    older.__enter__()
    phases.forget("a")  # deleted while the older sync runs
    newer.__enter__()
    phases.forget("b")
    newer.__exit__(None, None, None)
    assert phases.tombstones() == 2  # the older sync may still publish either
    phases.publish("b", "Pending")
    assert count(registry, "Pending") is None
    older.__exit__(None, None, None)
    assert phases.tombstones() == 0  # nothing kept per deleted job once those syncs are over


def test_a_deletion_with_no_sync_running_leaves_no_tombstone(registry, phases):
    phases.publish("a", "Pending")
    phases.forget("a")
    assert phases.tombstones() == 0
    assert count(registry, "Pending") == 0


def test_a_failing_sync_ends_too(phases):
    with pytest.raises(RuntimeError), phases.syncing():
        phases.forget("a")
        raise RuntimeError("the API server went away")
    assert phases.tombstones() == 0


def test_the_counts_kept_as_phases_change_match_a_recount(registry):
    # The gauge is kept incrementally (no recount per publish); after any sequence of
    # publishes and deletions, by overlapping syncs, it must equal counting the live jobs'
    # last phases, and no tombstone outlives the syncs.
    gauge = Gauge("perennial_operator_trainingjobs", "by phase", ["phase"], registry=registry)
    phases = TrainingJobPhases(gauge)
    rng = random.Random(18)
    names = ("Pending", "Validating", "Training", "Succeeded", "Failed")
    live: dict[str, str] = {}
    deleted_at: dict[str, int] = {}  # uid -> the step it was deleted at
    running: list[tuple[int, AbstractContextManager[None]]] = []  # (step begun, sync)
    for step in range(2_000):
        uid = f"job-{rng.randrange(40)}"
        roll = rng.random()
        if roll < 0.1 or not running:
            sync = phases.syncing()
            sync.__enter__()
            running.append((step, sync))
        elif roll < 0.2:
            running.pop(rng.randrange(len(running)))[1].__exit__(None, None, None)
        elif roll < 0.3:
            phases.forget(uid)
            live.pop(uid, None)
            deleted_at.setdefault(uid, step)
        else:
            begun, _ = rng.choice(running)
            if uid in deleted_at and begun > deleted_at[uid]:
                continue  # a sync begun after the deletion reads a 404: it publishes nothing
            phases.publish(uid, phase := rng.choice(names))
            if uid not in deleted_at:  # a deleted job stays out
                live[uid] = phase
        if step % 97 == 0 or step == 1_999:
            truth = Counter(live.values())
            seen = {n: count(registry, n) or 0 for n in names}
            assert seen == {n: truth.get(n, 0) for n in names}
    for _, sync in running:
        sync.__exit__(None, None, None)
    assert phases.tombstones() == 0
