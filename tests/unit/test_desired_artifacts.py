"""The artifact claim the operator creates per namespace: from the configured class,
access mode and size, never owned by a TrainingJob, and only for the default claim."""

from __future__ import annotations

from typing import Any

import pytest

from perennial_operator.config import OperatorConfig
from perennial_operator.desired.artifacts import artifact_claim, creates_claim

pytestmark = pytest.mark.unit


def test_the_claim_follows_the_configuration_and_has_no_owner() -> None:
    config = OperatorConfig(
        artifact_storage_class="fast", artifact_access_mode="ReadWriteMany", artifact_size="50Gi"
    )
    claim = artifact_claim("ml", config)
    assert claim["metadata"]["name"] == "perennial-artifacts"
    assert claim["metadata"]["namespace"] == "ml"
    assert "ownerReferences" not in claim["metadata"]  # it outlives every TrainingJob
    assert claim["spec"] == {
        "accessModes": ["ReadWriteMany"],
        "storageClassName": "fast",
        "resources": {"requests": {"storage": "50Gi"}},
    }


def test_no_class_configured_means_the_clusters_default() -> None:
    assert "storageClassName" not in artifact_claim("ml", OperatorConfig())["spec"]
    empty = artifact_claim("ml", OperatorConfig(artifact_storage_class=""))
    assert empty["spec"]["storageClassName"] == ""  # explicitly none: a pre-made volume


def tj(artifacts: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"spec": {"artifacts": artifacts} if artifacts is not None else {}}


@pytest.mark.parametrize(
    ("job", "config", "creates"),
    [
        (tj(), OperatorConfig(), True),
        (tj({"pvc": "perennial-artifacts"}), OperatorConfig(), True),
        (tj({"pvc": "team-models"}), OperatorConfig(), False),  # the user's own claim
        (tj(), OperatorConfig(create_artifact_claim=False), False),
    ],
    ids=["default", "default-named", "users-claim", "creation-off"],
)
def test_only_the_default_claim_is_created(job, config, creates) -> None:
    assert creates_claim(job, config) is creates


def test_the_environment_configures_it() -> None:
    config = OperatorConfig.from_env(
        {
            "PERENNIAL_ARTIFACT_STORAGE_CLASS": "nfs",
            "PERENNIAL_ARTIFACT_ACCESS_MODE": "ReadWriteMany",
            "PERENNIAL_ARTIFACT_SIZE": "1Ti",
            "PERENNIAL_ARTIFACT_CLAIM_CREATE": "false",
        }
    )
    assert (
        config.artifact_storage_class,
        config.artifact_access_mode,
        config.artifact_size,
        config.create_artifact_claim,
    ) == ("nfs", "ReadWriteMany", "1Ti", False)
    assert OperatorConfig.from_env({}).artifact_storage_class is None
