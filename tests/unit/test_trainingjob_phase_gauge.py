"""The TrainingJobs-by-phase gauge: deleted jobs leave it, even when a sync ends late."""

from __future__ import annotations

import uuid

import pytest
from prometheus_client import REGISTRY

from perennial_operator.reconcile import trainingjob as reconcile

pytestmark = pytest.mark.unit


def _count(phase: str) -> float:
    value = REGISTRY.get_sample_value("perennial_operator_trainingjobs", {"phase": phase})
    return 0.0 if value is None else value


def test_a_job_moving_on_leaves_its_old_phase_and_a_deleted_job_leaves_the_gauge() -> None:
    uid = str(uuid.uuid4())
    before = {p: _count(p) for p in ("Gauged", "GaugedNext")}
    reconcile._publish_phase(uid, "Gauged")
    assert _count("Gauged") == before["Gauged"] + 1
    reconcile._publish_phase(uid, "GaugedNext")
    assert _count("Gauged") == before["Gauged"]
    assert _count("GaugedNext") == before["GaugedNext"] + 1
    reconcile.forget_trainingjob("ns", "job", uid)
    assert _count("GaugedNext") == before["GaugedNext"]
    # A sync that read the job just before it was deleted and publishes afterwards.
    reconcile._publish_phase(uid, "GaugedNext")
    assert _count("GaugedNext") == before["GaugedNext"]
