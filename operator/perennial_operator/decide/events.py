"""The Kubernetes Event a decision asks for: the reconciler posts it, the decider only says so."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Event:
    type: str  # Normal | Warning
    reason: str
    message: str
