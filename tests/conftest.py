"""Shared by every test suite.

- tests/support is importable as `support`.
- The control-plane fixtures (`cluster`, `namespace`, `core`) and the operator's (`kube`,
  `operator`, `operator_options`, `world`, `world_notes`) come from
  support/cluster_fixtures.py. The cluster is session-scoped and lazy: a unit-only run never
  starts one, and integration and e2e tests share it.

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
from support.cluster_fixtures import (  # noqa: E402
    cluster,
    core,
    kube,
    namespace,
    operator,
    operator_kubeconfig,
    operator_options,
    world,
    world_notes,
)

__all__ = [
    "cluster",
    "core",
    "kube",
    "namespace",
    "operator",
    "operator_kubeconfig",
    "operator_options",
    "world",
    "world_notes",
]


def pytest_addoption(parser: pytest.Parser) -> None:
    pod_runtimes.add_option(parser)
