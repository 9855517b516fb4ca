"""End to end: the real control plane (the session's `cluster` and per-test `namespace`
fixtures from tests/support/cluster_fixtures.py), the operator as a process, and the local
runtime as a process, so training and serving pods really train and serve."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pytest

from perennial_hack.local_runtime.api import Api
from perennial_hack.local_runtime.claims import claim_bound, delete_volume, ensure_claim
from perennial_hack.local_runtime.runtime import ANNOTATIONS
from perennial_hack.local_runtime.volumes import Layout
from perennial_operator.config import DEFAULT_ARTIFACT_PVC
from support.operator_process import OperatorOptions
from support.poll import until


@dataclass
class LocalRuntimeProcess:
    state: Path
    log_path: Path
    proc: subprocess.Popen[bytes]

    def log_tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def pod_processes(self) -> list[str]:
        """Command lines of live processes started for its pods (they name its state)."""
        found = []
        for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
            try:
                text = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if str(self.state / "p") in text and "perennial-" in text:
                found.append(text)
        return found


@pytest.fixture(scope="session")
def local_runtime(
    cluster: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalRuntimeProcess]:
    state = tmp_path_factory.mktemp("local-runtime")
    log_path = state / "local-runtime.log"
    log: IO[bytes] = log_path.open("ab")
    argv = [
        sys.executable,
        "-m",
        "perennial_hack.local_runtime",
        "--kubeconfig",
        str(cluster.kubeconfig),
        "--state",
        str(state),
    ]
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    runtime = LocalRuntimeProcess(state, log_path, proc)
    try:
        until(
            lambda: "watching pods" in runtime.log_tail() or proc.poll() is not None,
            timeout=30,
            message="the local runtime to start",
        )
        assert proc.poll() is None, runtime.log_tail()
        yield runtime
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        log.close()
        # A clean stop leaves no training or serving process behind.
        assert runtime.pod_processes() == [], runtime.log_tail()


@pytest.fixture
def artifacts(cluster: Any, namespace: str, local_runtime: LocalRuntimeProcess) -> Iterator[Path]:
    """The operator's artifact claim in this namespace, bound; its local folder."""
    api = Api(str(cluster.kubeconfig))
    folder = ensure_claim(api, Layout(local_runtime.state), namespace, DEFAULT_ARTIFACT_PVC)
    until(
        lambda: claim_bound(api, namespace, DEFAULT_ARTIFACT_PVC),
        timeout=30,
        message=f"claim {DEFAULT_ARTIFACT_PVC} bound",
    )
    yield folder
    delete_volume(api, namespace, DEFAULT_ARTIFACT_PVC)


@pytest.fixture
def operator_options() -> OperatorOptions:
    """Pods of our runtime go to the local runtime (it runs them as processes)."""
    return OperatorOptions(pod_annotations=dict(ANNOTATIONS))


@pytest.fixture
def world_notes(local_runtime: LocalRuntimeProcess) -> Callable[[], str]:
    return lambda: "--- local runtime ---\n" + local_runtime.log_tail(30)
