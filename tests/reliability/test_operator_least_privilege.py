"""Finding 10 (issue 20), the pure parts: a pvc:// artifact URI cannot climb out of its
claim, and training pods get no Service environment variables (service links)."""

from __future__ import annotations

from typing import Any

import pytest

from perennial_operator.api.group import API_VERSION
from perennial_operator.config import OperatorConfig
from perennial_operator.decide.modelversion.status import modelversion_status
from perennial_operator.desired.placement import NO_POOL
from perennial_operator.desired.trainingjob import job

pytestmark = pytest.mark.unit

NOW = "2026-01-01T00:00:00Z"


def modelversion(uri: str) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION, "kind": "ModelVersion",
        "metadata": {"name": "iris-v1", "namespace": "ml", "generation": 1},
        "spec": {"model": "iris", "version": 1, "artifact": {"uri": uri, "sha256": "ab" * 32}},
    }  # fmt: skip


@pytest.mark.parametrize(
    "uri",
    [
        "pvc://../../etc",
        "pvc://..",
        "pvc://claim/../other-claim/models",
        "pvc://claim/models/../../x",
        "pvc://claim//etc",
        "pvc:///etc/passwd",
        "pvc://Claim_With_Caps/x",
        "pvc://claim/./x",
    ],
)
def test_a_pvc_uri_that_leaves_its_claim_is_refused(uri):
    status = modelversion_status(modelversion(uri), NOW)
    assert status["phase"] == "Failed"
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "InvalidReference")


@pytest.mark.parametrize("uri", ["pvc://perennial-artifacts/models/iris/1", "pvc://claim"])
def test_a_plain_pvc_uri_is_still_ready(uri):
    assert modelversion_status(modelversion(uri), NOW)["phase"] == "Ready"


def test_training_pods_get_no_service_links():
    tj = {
        "apiVersion": API_VERSION, "kind": "TrainingJob",
        "metadata": {"name": "t", "namespace": "ml", "uid": "u"},
        "spec": {"model": "iris", "task": "classification",
                 "dataset": {"uri": "builtin://iris", "target": "target"}},
    }  # fmt: skip
    spec = job(tj, OperatorConfig(), NO_POOL, None)["spec"]["template"]["spec"]
    # Service links put every Service of the namespace into the environment of code the
    # user may supply (a custom image): no more than the serving pods get.
    assert spec["enableServiceLinks"] is False
