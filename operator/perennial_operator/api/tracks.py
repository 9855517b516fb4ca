"""The two tracks of an InferenceService: `stable` (the current version) and `canary` (the
version being rolled out). Each names a Deployment (`<name>-stable`, `<name>-canary`), the
value of its pods' track label, and, with spec.rollout.httpRoute, the role Service the
route's weight for it points at."""

from __future__ import annotations

from typing import Final

STABLE: Final = "stable"
CANARY: Final = "canary"
TRACKS: Final = (STABLE, CANARY)
