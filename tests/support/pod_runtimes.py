"""What runs the pods of the e2e tests: a real node (kubelet, containerd, runc) running the
built runtime image, or the fast host-process local runtime. Both offer one surface to the
tests: where a claim's files are, what the operator must be told, what to show on failure.

`--e2e-runtime=node` (the default; or PERENNIAL_E2E_RUNTIME) or `--e2e-runtime=local`.
"""

from __future__ import annotations

import ipaddress
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import pytest

from perennial_hack.images.build import records, stale
from perennial_hack.local_runtime.api import Api
from perennial_hack.local_runtime.claims import ensure_claim as local_claim
from perennial_hack.local_runtime.runtime import ANNOTATIONS
from perennial_hack.local_runtime.volumes import Layout
from perennial_hack.node import storage
from perennial_hack.node.config import NAMESPACE_ANNOTATIONS
from perennial_hack.node.node import LocalNode
from support.poll import until

OPTION = "--e2e-runtime"
ENV = "PERENNIAL_E2E_RUNTIME"
CHOICES = ("node", "local")


def add_option(parser: pytest.Parser) -> None:
    parser.addoption(
        OPTION,
        choices=CHOICES,
        default=os.environ.get(ENV, "node"),
        help="what runs e2e pods: a real node with the built images (default), or the "
        "host-process local runtime (fast; no images, no isolation)",
    )


@dataclass
class NodeRuntime:
    """A real node of the session's cluster, with the built runtime image loaded."""

    node: LocalNode
    image: str  # the runtime image's tag, as pods name it
    kind: str = "node"
    pod_annotations: dict[str, str] = field(default_factory=dict)

    @property
    def operator_env(self) -> dict[str, str]:
        return {"PERENNIAL_RUNTIME_IMAGE": self.image}

    def prepare_namespace(self, core: Any, namespace: str) -> None:
        """Send the namespace's pods to the real node (the only one they tolerate)."""
        core.patch_namespace(namespace, {"metadata": {"annotations": NAMESPACE_ANNOTATIONS}})

    def ensure_claim(self, api: Api, namespace: str, claim: str) -> Path:
        return storage.ensure_claim(api, self.node.layout, namespace, claim)

    def claim_folder(self, namespace: str, claim: str) -> Path:
        return storage.claim_folder(self.node.layout, namespace, claim)

    @property
    def host_address(self) -> str:
        """An address of this host the pods can reach (the node's bridge)."""
        return self.node.ip

    def owns_pod_ip(self, ip: str) -> bool:
        network = self.node.network
        return network is not None and ipaddress.ip_address(ip) in network.subnet

    def log_tail(self, lines: int = 40) -> str:
        return self.node.log_tails(lines)

    def container_log(self, namespace: str, pod: str, container: str) -> str:
        return self.node.container_log(namespace, pod, container)


@dataclass
class LocalRuntimeProcess:
    """The host-process runtime (hack/perennial_hack/local_runtime/) as a child process."""

    state: Path
    log_path: Path
    proc: subprocess.Popen[bytes]
    kind: str = "local"
    pod_annotations: dict[str, str] = field(default_factory=lambda: dict(ANNOTATIONS))
    operator_env: dict[str, str] = field(default_factory=dict)

    def prepare_namespace(self, core: Any, namespace: str) -> None:
        pass  # pods run wherever the scheduler puts them; the annotations pick them

    def ensure_claim(self, api: Api, namespace: str, claim: str) -> Path:
        return local_claim(api, Layout(self.state), namespace, claim)

    def claim_folder(self, namespace: str, claim: str) -> Path:
        return Layout(self.state).pvc(namespace, claim)

    host_address: str = "127.0.0.1"  # the pods are processes of this host

    def owns_pod_ip(self, ip: str) -> bool:
        return ip.startswith("127.")

    def log_tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def container_log(self, namespace: str, pod: str, container: str) -> str:
        logs = self.state.glob(f"pods/*/logs/{container}.log")
        return "".join(p.read_text(errors="replace") for p in logs)

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


PodRuntime = NodeRuntime | LocalRuntimeProcess


def runtime_image() -> tuple[str, Path]:
    """(tag, OCI archive) of the runtime image `make images` built."""
    problem = stale("runtime")
    if problem:  # pods would run other code than the tests read
        raise pytest.UsageError(f"{problem} (or --e2e-runtime=local for the fast mode)")
    record = records()["runtime"]
    return record.tag, Path(record.archive)


def node_runtime(cluster: Any) -> Iterator[NodeRuntime]:
    if cluster.local is None:
        raise pytest.UsageError(
            "--e2e-runtime=node adds a node to the session's own cluster; with "
            "PERENNIAL_TEST_KUBECONFIG use --e2e-runtime=local"
        )
    tag, archive = runtime_image()
    node = LocalNode(cluster.local, images=[archive], tie_to_parent=True)
    node.start()
    try:
        yield NodeRuntime(node, tag)
    finally:
        node.stop(quiet=True)


def local_runtime(cluster: Any, state: Path) -> Iterator[LocalRuntimeProcess]:
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
