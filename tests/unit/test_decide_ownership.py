"""Whose child an object is: its controlling owner reference."""

from __future__ import annotations

import pytest

from perennial_operator.decide.ownership import controller_uid, owned_by

pytestmark = pytest.mark.unit

OWNED = {
    "metadata": {
        "ownerReferences": [
            {"uid": "other", "controller": False},
            {"uid": "tj-uid", "controller": True},
        ]
    }
}


def test_the_controller_uid_is_the_controlling_reference_not_the_first() -> None:
    assert controller_uid(OWNED["metadata"]) == "tj-uid"
    assert owned_by(OWNED, "tj-uid") and not owned_by(OWNED, "other")


@pytest.mark.parametrize(
    "meta",
    [{}, {"ownerReferences": None}, {"ownerReferences": [{"uid": "x", "controller": False}]}],
)
def test_no_controller_is_no_uid_and_owned_by_nobody(meta: dict) -> None:
    assert controller_uid(meta) == ""
    assert not owned_by({"metadata": meta}, "")
