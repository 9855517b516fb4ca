"""Errors every command may report (no heavy imports: `validate` loads this too)."""

from __future__ import annotations


class KubeError(Exception):
    """An API error in words a user can act on."""
