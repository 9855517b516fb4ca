"""The operator as a real process (`python -m perennial_operator`), as in a pod."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any


@dataclass(frozen=True)
class OperatorOptions:
    """How a test module wants the shared `operator` fixture (tests/conftest.py) started; a
    module overrides the `operator_options` fixture to change it."""

    pod_annotations: Mapping[str, str] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=dict)
    # Bind the default artifact claim first: the scheduler places no training pod without it.
    artifact_claim: bool = False


class OperatorProcess:
    def __init__(
        self,
        kubeconfig: str,
        namespace: str,
        log_path: Path,
        pod_annotations: dict[str, str] | None = None,
        extra_env: dict[str, str] | None = None,
        args: list[str] | None = None,
    ) -> None:
        self.kubeconfig = kubeconfig
        self.namespace = namespace
        self.log_path = log_path
        self.pod_annotations = pod_annotations or {}
        self.extra_env = extra_env or {}
        self.args = ["--standalone"] if args is None else args
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[Any] | None = None

    def start(self) -> OperatorProcess:
        env = {
            **os.environ,
            "KUBECONFIG": self.kubeconfig,
            "PERENNIAL_METRICS_PORT": "0",
            "PERENNIAL_POD_ANNOTATIONS": json.dumps(self.pod_annotations),
            "PERENNIAL_RUNTIME_IMAGE": "perennial/runtime:test",
            **self.extra_env,
        }
        self._log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "perennial_operator",
                *self.args,
                "-n",
                self.namespace,
                "--verbose",
            ],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    def kill(self) -> None:
        """SIGKILL: the crash an operator pod can suffer at any moment."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        self._close_log()

    def _close_log(self) -> None:
        if self._log:
            self._log.close()
            self._log = None

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()
        self._close_log()

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""
