"""perennial-serve as a real subprocess on 127.0.0.1 with an ephemeral port."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import requests


class ServerProcess:
    def __init__(self, model_dir: Path, *args: str) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "perennial_runtime.serve", "--model-dir", str(model_dir),
             "--host", "127.0.0.1", "--port", "0", *args],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env,
        )  # fmt: skip
        self.lines: list[str] = []
        self._ready = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.port = 0

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line)
            if '"msg":"ready"' in line:
                self._ready.set()
        self._ready.set()  # EOF: the process is gone

    def wait_ready(self, timeout: float = 90.0) -> ServerProcess:
        self._ready.wait(timeout)
        for entry in self.logs():
            if entry.get("msg") == "ready":
                self.port = int(entry["port"])
                return self
        self.stop()
        raise AssertionError("server did not become ready:\n" + "".join(self.lines))

    def logs(self) -> list[dict[str, Any]]:
        out = []
        for line in list(self.lines):
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
        return out

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def post(self, path: str, body: Any, **kwargs: Any) -> requests.Response:
        return requests.post(self.url + path, json=body, timeout=30, **kwargs)

    def metrics(self) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        """Samples of /metrics: {(name, labels without model/version): value}."""
        from prometheus_client.parser import text_string_to_metric_families

        text = requests.get(self.url + "/metrics", timeout=30).text
        samples = {}
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                labels = frozenset(
                    (k, v) for k, v in s.labels.items() if k not in ("model", "version")
                )
                samples[(s.name, labels)] = s.value
        return samples

    def terminate(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)

    def wait(self, timeout: float = 60.0) -> int:
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        if self.proc.poll() is None:
            self.proc.kill()
        code = self.proc.wait()
        self._reader.join(timeout=10)  # it has read up to EOF: every log line is in
        if self.proc.stderr is not None:
            self.proc.stderr.close()
        return code

    def stop(self) -> int:
        self.terminate()
        return self.wait()


def run_to_exit(model_dir: Path, *args: str, timeout: float = 60.0) -> tuple[int, str]:
    """Run a server that is expected to refuse to start; return (exit code, stderr)."""
    proc = subprocess.run(
        [sys.executable, "-m", "perennial_runtime.serve", "--model-dir", str(model_dir),
         "--host", "127.0.0.1", "--port", "0", "--workers", "1", *args],
        capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip
    return proc.returncode, proc.stderr
