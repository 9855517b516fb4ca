"""The operator's log says what it did, a line per step a user would follow (kopf's own
per-event lines are off by default: main.configure_logging), and nothing for a sync that
changed nothing."""

from __future__ import annotations

import copy
import logging
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Gauge

from perennial_operator.api.group import API_VERSION
from perennial_operator.config import OperatorConfig
from perennial_operator.metrics import TrainingJobPhases
from perennial_operator.reconcile.locks import KeyedLocks
from perennial_operator.reconcile.modelversion import sync_modelversion
from perennial_operator.reconcile.trainingjob import sync_trainingjob
from support.fake_kube import FakeKube
from support.trainingjob_objects import NS, finished_job, trainingjob

pytestmark = pytest.mark.unit


def _sync(kube: FakeKube) -> None:
    gauge = Gauge("trainingjobs", "by phase", ["phase"], registry=CollectorRegistry())
    sync_trainingjob(kube, NS, "churn-1", OperatorConfig(), KeyedLocks(), TrainingJobPhases(gauge))


def _lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    caplog.clear()
    return lines


def test_a_trainingjob_logs_its_job_its_steps_and_its_model_once_each(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="perennial_operator")
    kube = FakeKube(trainingjob())
    _sync(kube)
    assert _lines(caplog) == [
        "created PersistentVolumeClaim ml/perennial-artifacts for models",  # the first job's
        "TrainingJob ml/churn-1: created Job churn-1-train",
        "TrainingJob ml/churn-1: new -> Pending: waiting for the Job controller to start a pod",
    ]
    _sync(kube)  # no news
    assert _lines(caplog) == []
    for obj in finished_job():  # the Job controller's and the runtime's work
        kube.objects[kube._key(obj["kind"], NS, obj["metadata"]["name"])] = copy.deepcopy(obj)  # noqa: SLF001
    _sync(kube)
    lines = _lines(caplog)
    assert lines[0] == "TrainingJob ml/churn-1: registered ModelVersion churn-v1"
    assert lines[1].startswith(
        "TrainingJob ml/churn-1: Pending -> Succeeded: trained and registered"
    )
    assert len(lines) == 2
    _sync(kube)
    assert _lines(caplog) == []


def test_a_stage_change_and_the_archiving_it_causes_are_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="perennial_operator")

    def mv(version: int, stage: str) -> dict[str, Any]:
        artifact = {"uri": f"pvc://a/{version}", "sha256": "ab" * 32}
        spec = {"model": "churn", "version": version, "stage": stage, "artifact": artifact}
        meta = {"name": f"churn-v{version}", "namespace": NS}
        return {"apiVersion": API_VERSION, "kind": "ModelVersion", "metadata": meta, "spec": spec}

    kube = FakeKube(mv(1, "Production"), mv(2, "Production"))
    sync_modelversion(kube, kube.get(API_VERSION, "ModelVersion", NS, "churn-v2"))
    assert _lines(caplog) == [
        "ModelVersion ml/churn-v2: stage None -> Production",
        "ModelVersion ml/churn-v1: archived (churn-v2 is Production)",
    ]
    sync_modelversion(kube, kube.get(API_VERSION, "ModelVersion", NS, "churn-v2"))
    assert _lines(caplog) == []
