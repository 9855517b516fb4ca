"""The model registry's rules: version numbers and the one-Production-per-model rule."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

PRODUCTION = "Production"
ARCHIVED = "Archived"


def next_version(existing: Iterable[int], high_water: int = 0) -> int:
    """The next version: one past the highest that exists or ever existed (`high_water`,
    kept where deleting a ModelVersion cannot lower it), so no number is ever reused."""
    return max(max(existing, default=0), high_water) + 1


def versions_to_archive(promoted: dict[str, Any], siblings: Iterable[dict[str, Any]]) -> list[str]:
    """Names of the other ModelVersions of the same model that still hold Production."""
    model = promoted["spec"]["model"]
    name = promoted["metadata"]["name"]
    return sorted(
        mv["metadata"]["name"]
        for mv in siblings
        if mv["spec"].get("model") == model
        and mv["metadata"]["name"] != name
        and mv["spec"].get("stage") == PRODUCTION
    )


SUPPORTED_ARTIFACT_SCHEMES = ("pvc://", "file://", "s3://", "gs://", "http://", "https://")


def modelversion_problem(mv: dict[str, Any]) -> str | None:
    """What is wrong with a ModelVersion that the schema cannot see, or None."""
    artifact = mv["spec"].get("artifact") or {}
    uri = str(artifact.get("uri", ""))
    if not uri.startswith(SUPPORTED_ARTIFACT_SCHEMES):
        return f"artifact uri {uri!r} has an unsupported scheme"
    if artifact.get("format") == "joblib" and not artifact.get("allowUnsafePickle"):
        return "format joblib needs artifact.allowUnsafePickle: true (pickle can run code)"
    return None
