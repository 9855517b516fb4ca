"""A model file swapped after the server verified it is never loaded (issue 20, finding 9,
the server's half): each worker, also one restarted later, verifies before it loads."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import time

import pytest
import requests

from support.model_dirs import build
from support.server_process import ServerProcess

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(300)]


def test_a_restarted_worker_refuses_a_model_swapped_on_disk(tmp_path):
    root = tmp_path / "models"
    logreg, other = build("logreg", root), build("forest", root, trees=3)
    digest = hashlib.sha256((logreg.path / "result.json").read_bytes()).hexdigest()
    server = ServerProcess(logreg.path, "--workers", "1", "--expected-sha256", digest)
    server.wait_ready()
    try:
        url = server.url + "/v1/models/bc-logreg:predict"
        rows = logreg.X_test.values.tolist()
        answer = requests.post(url, json={"instances": rows}, timeout=30)
        assert answer.json()["predictions"] == logreg.pipeline.predict(logreg.X_test).tolist()
        # Another model with the same inputs, written over the verified file.
        shutil.copyfile(other.path / "model.onnx", logreg.path / "model.onnx")
        (worker,) = next(e["pids"] for e in server.logs() if e.get("msg") == "ready")
        os.kill(worker, signal.SIGKILL)
        served_after = []
        deadline = time.monotonic() + 60
        while server.proc.poll() is None and time.monotonic() < deadline:
            try:
                served_after.append(requests.post(url, json={"instances": rows}, timeout=5))
            except requests.ConnectionError:
                pass
            time.sleep(0.2)
        assert not served_after, "a worker served the swapped model"
        assert server.wait(timeout=5) == 3
        refusal = [e["msg"] for e in server.logs() if e.get("msg", "").startswith("cannot")]
        assert refusal and "model.onnx" in refusal[0] and "does not match" in refusal[0]
    finally:
        server.stop()
