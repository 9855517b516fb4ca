"""The ModelVersion reconcile against the in-memory FakeKube: legacy status.rejections move to
annotations before the status field goes, so no crash loses a rejection."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from perennial_operator.api.group import API_VERSION
from perennial_operator.api.rejections import rejected_by, rejections_of, retry_key
from perennial_operator.reconcile.modelversion import sync_modelversion
from support.fake_kube import FakeKube

pytestmark = pytest.mark.unit
NS = "ml"
T1 = "2026-11-27T12:00:00Z"


def legacy_mv(annotations: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "ModelVersion",
        "metadata": {"name": "churn-v2", "namespace": NS, "generation": 1,
                     "annotations": annotations or {}},
        "spec": {"model": "churn", "version": 2, "stage": "Production",
                 "artifact": {"uri": "pvc://a/m", "sha256": "ab" * 32}},
        "status": {"phase": "Ready", "rejections": [
            {"inferenceService": "churn", "reason": "ErrorRateExceeded", "message": "m",
             "time": T1}]},
    }  # fmt: skip


def stored(kube: FakeKube) -> dict[str, Any]:
    return kube.get(API_VERSION, "ModelVersion", NS, "churn-v2")


def test_legacy_rejections_move_to_annotations_then_leave_status() -> None:
    kube = FakeKube(legacy_mv())
    sync_modelversion(kube, stored(kube))
    mv = stored(kube)
    assert "rejections" not in mv["status"] and mv["status"]["phase"] == "Ready"
    assert [(r.service, r.reason, r.time, r.legacy) for r in rejections_of(mv)] == [
        ("churn", "ErrorRateExceeded", T1, False)
    ]
    writes = kube.verbs()
    assert writes.index("patch ModelVersion/churn-v2") < writes.index(
        "patch_status ModelVersion/churn-v2"
    )


def test_a_crash_before_the_status_is_cleared_keeps_the_rejection() -> None:
    kube = FakeKube(legacy_mv())
    kube.fail("patch_status", "ModelVersion", lambda: ApiException(status=500, reason="crash"))
    with pytest.raises(ApiException):
        sync_modelversion(kube, stored(kube))
    assert rejected_by(stored(kube), "churn")
    kube = FakeKube(*kube.objects.values())
    sync_modelversion(kube, stored(kube))
    assert rejected_by(stored(kube), "churn") and "rejections" not in stored(kube)["status"]


def test_a_legacy_rejection_already_retried_stays_retried() -> None:
    kube = FakeKube(legacy_mv({retry_key("churn"): T1}))
    sync_modelversion(kube, stored(kube))
    mv = stored(kube)
    assert not rejected_by(mv, "churn")
    assert mv["metadata"]["annotations"][retry_key("churn")] == T1  # the user's key, untouched
