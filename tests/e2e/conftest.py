"""End to end: the real control plane (the session's `cluster` and per-test `namespace`
fixtures from tests/support/cluster_fixtures.py), the operator as a process, and pods run
for real: by a real node running the built images (default), or by the host-process local
runtime (`--e2e-runtime=local`, fast). See tests/support/pod_runtimes.py."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from perennial_hack.local_runtime.api import Api
from perennial_hack.local_runtime.claims import claim_bound, delete_volume
from perennial_operator.config import DEFAULT_ARTIFACT_PVC
from support.operator_process import OperatorOptions
from support.pod_runtimes import PodRuntime, local_runtime, node_runtime
from support.poll import until


@pytest.fixture(scope="session")
def pod_runtime(
    request: pytest.FixtureRequest, cluster: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PodRuntime]:
    if request.config.getoption("--e2e-runtime") == "local":
        yield from local_runtime(cluster, tmp_path_factory.mktemp("local-runtime"))
    else:
        yield from node_runtime(cluster)


@pytest.fixture
def artifacts(cluster: Any, core: Any, namespace: str, pod_runtime: PodRuntime) -> Iterator[Path]:
    """The operator's artifact claim in this namespace, bound; its folder on this host.
    The namespace's pods go where the runtime runs them."""
    pod_runtime.prepare_namespace(core, namespace)
    api = Api(str(cluster.kubeconfig))
    folder = pod_runtime.ensure_claim(api, namespace, DEFAULT_ARTIFACT_PVC)
    until(
        lambda: claim_bound(api, namespace, DEFAULT_ARTIFACT_PVC),
        timeout=30,
        message=f"claim {DEFAULT_ARTIFACT_PVC} bound",
    )
    yield folder
    delete_volume(api, namespace, DEFAULT_ARTIFACT_PVC)


@pytest.fixture
def operator_options(pod_runtime: PodRuntime) -> OperatorOptions:
    """Pods of our runtime go where the pod runtime runs them, from its image."""
    return OperatorOptions(
        pod_annotations=dict(pod_runtime.pod_annotations), env=dict(pod_runtime.operator_env)
    )


@pytest.fixture
def world_notes(pod_runtime: PodRuntime) -> Callable[[], str]:
    return lambda: f"--- {pod_runtime.kind} runtime ---\n" + pod_runtime.log_tail(30)
