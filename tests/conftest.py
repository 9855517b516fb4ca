"""Shared by every test suite.

- tests/support is importable as `support`.
- The control-plane fixtures (`cluster`, `namespace`, `core`) come from
  support/cluster_fixtures.py. They are session-scoped and lazy: a unit-only run never
  starts a cluster, and integration and e2e tests share one.

Markers (unit, integration, e2e) are declared in pyproject.toml.
"""

from __future__ import annotations

import sys
from pathlib import Path

_TESTS = str(Path(__file__).resolve().parent)
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)

import pytest  # noqa: E402

from support import pod_runtimes  # noqa: E402
from support.cluster_fixtures import cluster, core, namespace  # noqa: E402

__all__ = ["cluster", "core", "namespace"]


def pytest_addoption(parser: pytest.Parser) -> None:
    pod_runtimes.add_option(parser)
