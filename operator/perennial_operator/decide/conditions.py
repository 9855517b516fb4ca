"""metav1.Condition bookkeeping, pure: `now` is passed in, never read from a clock."""

from __future__ import annotations

from typing import Any

Condition = dict[str, Any]


def set_condition(
    conditions: list[Condition],
    *,
    type_: str,
    status: bool | None,
    reason: str,
    message: str,
    generation: int,
    now: str,
) -> list[Condition]:
    """Return a new list with `type_` set; lastTransitionTime moves only when status flips."""
    value = {True: "True", False: "False", None: "Unknown"}[status]
    old = next((c for c in conditions if c.get("type") == type_), None)
    since = old["lastTransitionTime"] if old and old.get("status") == value else now
    new: Condition = {
        "type": type_,
        "status": value,
        "reason": reason,
        "message": message[:32000],
        "observedGeneration": generation,
        "lastTransitionTime": since,
    }
    return [c for c in conditions if c.get("type") != type_] + [new]


def get_condition(conditions: list[Condition], type_: str) -> Condition | None:
    return next((c for c in conditions if c.get("type") == type_), None)


def is_true(conditions: list[Condition], type_: str) -> bool:
    cond = get_condition(conditions, type_)
    return bool(cond and cond.get("status") == "True")
