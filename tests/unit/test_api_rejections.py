"""Rejections on ModelVersion annotations, the user's retry key, and the legacy status list."""

from __future__ import annotations

import json
from typing import Any

import pytest

from perennial_operator.api.rejections import (
    legacy_records,
    record,
    rejected_by,
    rejected_key,
    rejections_of,
    retry_key,
)

pytestmark = pytest.mark.unit

T1, T2 = "2026-11-27T12:00:00.000001Z", "2026-11-27T13:00:00.000002Z"


def mv(annotations: dict[str, str] | None = None, legacy: list[Any] | None = None) -> Any:
    out: dict[str, Any] = {"metadata": {"name": "churn-v2", "annotations": annotations or {}}}
    if legacy is not None:
        out["status"] = {"rejections": legacy}
    return out


def entry(service: str, time: str, reason: str = "ErrorRateExceeded") -> dict[str, str]:
    return {"inferenceService": service, "reason": reason, "message": "m", "time": time}


CASES = [
    # id, ModelVersion -> rejected by "churn", rejected by "other"
    ("nothing", mv(), False, False),
    ("recorded", mv(record("churn", "ErrorRateExceeded", "m", T1)), True, False),
    ("retried", mv({**record("churn", "E", "m", T1), retry_key("churn"): T1}), False, False),
    ("retry-of-an-older-rejection-does-not-clear-a-new-one",
     mv({**record("churn", "E", "m", T2), retry_key("churn"): T1}), True, False),
    ("retry-of-another-service", mv({**record("churn", "E", "m", T1), retry_key("other"): T1}),
     True, False),
    ("two-services", mv({**record("churn", "E", "m", T1), **record("other", "E", "m", T2)}),
     True, True),
    ("legacy-status", mv(legacy=[entry("churn", T1)]), True, False),
    ("legacy-retried", mv({retry_key("churn"): T1}, [entry("churn", T1)]), False, False),
    ("legacy-latest-entry-counts", mv({retry_key("churn"): T1},
                                       [entry("churn", T1), entry("churn", T2)]), True, False),
    ("annotation-wins-over-legacy", mv({**record("churn", "E", "m", T2), retry_key("churn"): T2},
                                       [entry("churn", T1)]), False, False),
    ("unreadable-annotation-ignored", mv({rejected_key("churn"): "not json"}), False, False),
    ("hand-deleted-record", mv({retry_key("churn"): T1}), False, False),
]  # fmt: skip


@pytest.mark.parametrize(
    ("obj", "churn", "other"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_rejected_by(obj: Any, churn: bool, other: bool) -> None:
    assert (rejected_by(obj, "churn"), rejected_by(obj, "other")) == (churn, other)


def test_the_record_is_compact_json_with_a_bounded_message() -> None:
    ((key, value),) = record("churn", "LatencyExceeded", "x" * 10_000, T1).items()
    assert key == "rejected.perennial.dev/churn"
    data = json.loads(value)
    assert data["inferenceService"] == "churn" and data["time"] == T1
    assert len(data["message"]) == 2048 and " " not in value[:40]


def test_a_long_service_name_still_makes_a_valid_annotation_key() -> None:
    service = "s" * 200
    for key in (rejected_key(service), retry_key(service)):
        name = key.split("/", 1)[1]
        assert len(name) <= 63 and name[-1].isalnum()
    assert rejected_key(service) != rejected_key("s" * 199)
    obj = mv(record(service, "E", "m", T1))
    assert rejected_by(obj, service)  # the service's name is in the value, not only the key


def test_legacy_entries_become_annotations_unless_an_annotation_is_there() -> None:
    obj = mv(record("other", "E", "new", T2), [entry("churn", T1), entry("other", T1)])
    notes = legacy_records(obj)
    assert list(notes) == [rejected_key("churn")]
    assert json.loads(notes[rejected_key("churn")])["time"] == T1
    migrated = mv({**obj["metadata"]["annotations"], **notes})
    assert [(r.service, r.time, r.legacy) for r in rejections_of(migrated)] == [
        ("churn", T1, False),
        ("other", T2, False),
    ]


@pytest.mark.parametrize(("obj", "churn", "other"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])  # fmt: skip
def test_the_cli_and_the_studio_read_what_the_operator_writes(obj, churn, other) -> None:
    """The CLI imports nothing of the operator: its copy must agree case for case."""
    from perennial_cli.actions import _rejected_by
    from perennial_studio.facts import rejected_by as studio_rejected_by

    for service, want in (("churn", churn), ("other", other)):
        assert _rejected_by(obj, service) == want, service
        assert studio_rejected_by(obj, service) == want, service
