"""kopf's diff base: no essence built for kinds with event handlers only, and none of those
kinds has a handler that would need it."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import kopf
import pytest

import perennial_operator.handlers  # noqa: F401  (registers every handler)
from perennial_operator.handlers.essence import EVENTS_ONLY, DiffedOnlyStorage

pytestmark = pytest.mark.unit


def storage() -> DiffedOnlyStorage:
    return DiffedOnlyStorage(prefix="perennial.dev", key="last-handled-configuration")


def body(api_version: str, kind: str) -> kopf.Body:
    return kopf.Body({
        "apiVersion": api_version,
        "kind": kind,
        "metadata": {"name": "a", "namespace": "ns", "labels": {"x": "y"}},
        "spec": {"replicas": 2},
        "status": {"phase": "Running"},
    })  # fmt: skip


@pytest.mark.parametrize(
    ("api_version", "kind"),
    [("perennial.dev/v1alpha1", "ModelVersion"), ("apps/v1", "Deployment"),
     ("gateway.networking.k8s.io/v1", "HTTPRoute")],
)  # fmt: skip
def test_kinds_with_event_handlers_only_get_no_essence(api_version: str, kind: str) -> None:
    assert storage().build(body=body(api_version, kind)) == {}


@pytest.mark.parametrize(
    ("api_version", "kind"),
    [("perennial.dev/v1alpha1", "InferenceService"), ("perennial.dev/v1alpha1", "RetrainPolicy"),
     ("perennial.dev/v1alpha1", "ComputePool"), ("example.com/v1", "Job")],
)  # fmt: skip
def test_diffed_kinds_keep_kopfs_essence(api_version: str, kind: str) -> None:
    built = storage().build(body=body(api_version, kind))
    assert built == kopf.AnnotationsDiffBaseStorage().build(body=body(api_version, kind))
    assert built["spec"] == {"replicas": 2}


def _watched(handlers: Iterable[Any]) -> set[tuple[str | None, str | None]]:
    """(group, plural) of each handler's resource (kopf keeps a positional name apart)."""
    selectors = [h.selector for h in handlers if h.selector is not None]
    return {(s.group, s.plural or s.any_name) for s in selectors}


def test_no_kind_without_an_essence_has_a_handler_that_diffs() -> None:
    """create/update/resume/delete/field handlers diff the essence, timers and daemons reset
    on it: none may watch a kind that gets none."""
    registry = kopf.get_default_registry()
    listed = {(group, plural) for (group, _), plural in EVENTS_ONLY.items()}
    diffing = _watched(registry._changing.get_all_handlers())
    diffing |= _watched(registry._spawning.get_all_handlers())
    assert ("perennial.dev", "inferenceservices") in diffing  # the registry was read
    assert not diffing & listed
    # and each kind listed is still watched at all (the list is not stale)
    assert listed <= _watched(registry._watching.get_all_handlers())
