"""The operator as a real process (`python -m perennial_operator`), as in a pod."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import IO, Any


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


def start_for_training(kubeconfig: str, namespace: str, tmp_path: Path) -> OperatorProcess:
    """The operator as TrainingJob tests need it: the artifact claim bound (the scheduler
    will not place a pod whose claim is missing) and pod status left to the test."""
    from kubernetes import config

    from perennial_operator.config import DEFAULT_ARTIFACT_PVC
    from perennial_operator.k8s.kube import Kube
    from support import kubelet, storage

    kube = Kube(config.new_client_from_config(config_file=kubeconfig))
    storage.bound_claim(kube, namespace, DEFAULT_ARTIFACT_PVC, str(tmp_path / "pv"))
    return OperatorProcess(
        kubeconfig, namespace, tmp_path / "operator.log", pod_annotations=kubelet.LEAVE_TO_TEST
    ).start()
