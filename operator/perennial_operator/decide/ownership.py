"""Whose object a name holds (issue 20, finding 1). The operator applies children with
forced server-side apply and deletes them by name, so before any write it checks that an
existing object of that name is controlled by the resource at hand: anything else (a
user's object, another resource's child) is a name collision, never adopted nor deleted."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def controller_uid(meta: dict[str, Any]) -> str:
    """The uid of the object's controlling owner ("" when it has none)."""
    for ref in meta.get("ownerReferences") or []:
        if ref.get("controller"):
            return str(ref.get("uid") or "")
    return ""


def owned_by(obj: dict[str, Any], owner_uid: str) -> bool:
    refs = obj.get("metadata", {}).get("ownerReferences") or []
    return any(ref.get("uid") == owner_uid and ref.get("controller") for ref in refs)


def name_conflict(
    owner: dict[str, Any], existing: Iterable[tuple[str, str, dict[str, Any] | None]]
) -> str | None:
    """Why `owner` cannot write its children, or None. `existing` is (kind, name, object as
    read or None when absent) for every child name `owner` would write or delete."""
    meta = owner["metadata"]
    taken = [
        f"{kind} {name}" for kind, name, obj in existing if obj and not owned_by(obj, meta["uid"])
    ]
    if not taken:
        return None
    return (
        f"{', '.join(taken)} already exist{'s' if len(taken) == 1 else ''} and "
        f"{'is' if len(taken) == 1 else 'are'} not owned by {owner['kind']} {meta['name']}; "
        "rename this resource or remove the other object (it is left untouched)"
    )
