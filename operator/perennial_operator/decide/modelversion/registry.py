"""The model registry's rules: version numbers and the one-Production-per-model rule."""

from __future__ import annotations

import re
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


_DNS_1123 = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


def pvc_uri_problem(uri: str) -> str | None:
    """pvc://<claim>/<path>: the claim a valid name, the path relative with no `.`, `..` or
    empty segments, so a pod's mount never climbs out of the claim (issue 20, finding 10)."""
    claim, _, path = uri.removeprefix("pvc://").partition("/")
    if len(claim) > 253 or not _DNS_1123.fullmatch(claim):
        return f"artifact uri {uri!r}: {claim!r} is not a PersistentVolumeClaim name"
    if path and any(part in ("", ".", "..") for part in path.split("/")):
        return f"artifact uri {uri!r}: the path may not hold '.', '..' or empty segments"
    return None


def modelversion_problem(mv: dict[str, Any]) -> str | None:
    """What is wrong with a ModelVersion that the schema cannot see, or None."""
    artifact = mv["spec"].get("artifact") or {}
    uri = str(artifact.get("uri", ""))
    if not uri.startswith(SUPPORTED_ARTIFACT_SCHEMES):
        return f"artifact uri {uri!r} has an unsupported scheme"
    if uri.startswith("pvc://"):
        problem = pvc_uri_problem(uri)
        if problem:
            return problem
    if artifact.get("format") == "joblib" and not artifact.get("allowUnsafePickle"):
        return "format joblib needs artifact.allowUnsafePickle: true (pickle can run code)"
    return None
