"""The server as a process: refuses tampered or unsafe artifacts before it is ready,
and on SIGTERM answers every request it has read before it exits 0."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import threading
import time

import pytest
import requests
import skops.io as sio
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from support.model_dirs import build
from support.server_process import ServerProcess, run_to_exit

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def logreg(tmp_path_factory):
    return build("logreg", tmp_path_factory.mktemp("models"))


def copy(case, tmp_path):
    target = tmp_path / "model"
    shutil.copytree(case.path, target)
    return target


def relist(model_dir, *names):
    """Rewrite result.json as if the trainer had written exactly these artifacts."""
    result = json.loads((model_dir / "result.json").read_text())
    result["artifacts"] = {
        n: {
            "sha256": hashlib.sha256((model_dir / n).read_bytes()).hexdigest(),
            "bytes": (model_dir / n).stat().st_size,
        }
        for n in names
    }
    (model_dir / "result.json").write_text(json.dumps(result))


def test_a_tampered_artifact_is_refused(logreg, tmp_path):
    model_dir = copy(logreg, tmp_path)
    data = bytearray((model_dir / "model.onnx").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (model_dir / "model.onnx").write_bytes(bytes(data))
    code, stderr = run_to_exit(model_dir)
    assert code == 2
    assert "model.onnx" in stderr and "does not match result.json" in stderr
    assert '"msg":"ready"' not in stderr


def test_result_json_must_match_the_model_version_digest(logreg):
    code, stderr = run_to_exit(logreg.path, "--expected-sha256", "ab" * 32)
    assert code == 2 and "does not match --expected-sha256" in stderr


def test_plain_pickle_needs_explicit_permission(logreg, tmp_path):
    model_dir = copy(logreg, tmp_path)
    for name in ("model.onnx", "model.skops"):
        (model_dir / name).unlink()
    (model_dir / "model.joblib").write_bytes(b"not even loaded")
    relist(model_dir, "model.joblib", "signature.json", "profile.json")
    code, stderr = run_to_exit(model_dir)
    assert code == 2 and "--allow-unsafe-pickle" in stderr


def scale_up(x):
    return x * 2


def test_a_skops_file_with_untrusted_types_is_refused(logreg, tmp_path):
    model_dir = copy(logreg, tmp_path)
    pipeline = Pipeline(
        [("f", FunctionTransformer(scale_up)), ("m", LogisticRegression(max_iter=5000))]
    )
    pipeline.fit(logreg.X_test.abs(), logreg.y_test)
    sio.dump(pipeline, model_dir / "model.skops")
    (model_dir / "model.onnx").unlink()
    relist(model_dir, "model.skops", "signature.json", "profile.json")
    code, stderr = run_to_exit(model_dir)
    assert code == 3, stderr
    assert f"not trusted: {__name__}.scale_up" in stderr and "--trust-type" in stderr


class Load:
    """Client threads that keep sending until the server stops taking connections."""

    def __init__(self, server, rows, threads=6):
        self.server, self.rows = server, rows
        self.statuses: list[int] = []
        self.errors: list[str] = []
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(i,)) for i in range(threads)]
        for thread in self.threads:
            thread.start()

    def _run(self, index):
        url = self.server.url + "/v1/models/bc-logreg:predict"
        session = requests.Session() if index % 2 else None  # keep-alive and fresh connections
        deadline = time.monotonic() + 60
        while not self.stop.is_set() and time.monotonic() < deadline:
            body = {"instances": self.rows[index::3][:5]}
            try:
                answer = (session or requests).post(url, json=body, timeout=30)
            except requests.ConnectionError as exc:
                self.errors.append(type(exc).__name__)
                if self.server.proc.poll() is not None or len(self.errors) > 50:
                    break
                continue
            self.statuses.append(answer.status_code)
        if session is not None:
            session.close()

    def join(self):
        for thread in self.threads:
            thread.join(timeout=90)


def test_sigterm_during_load_loses_no_accepted_request(logreg):
    digest = hashlib.sha256((logreg.path / "result.json").read_bytes()).hexdigest()
    server = ServerProcess(logreg.path, "--workers", "2", "--expected-sha256", digest)
    server.wait_ready()
    load = Load(server, logreg.X_test.values.tolist())
    deadline = time.monotonic() + 60
    while len(load.statuses) < 300 and time.monotonic() < deadline:
        time.sleep(0.01)
    server.terminate()
    code = server.wait(timeout=60)
    load.stop.set()
    load.join()
    assert code == 0, "".join(server.lines)
    stopped = [e for e in server.logs() if e.get("msg") == "stopped" and "worker" in e]
    assert len(stopped) == 2 and all(e["drained"] for e in stopped)
    assert set(load.statuses) == {200}
    # Every request a worker read was answered, and the client got every answer.
    assert sum(e["requests"] for e in stopped) == len(load.statuses)


def test_workers_leave_when_the_parent_is_killed(logreg):
    server = ServerProcess(logreg.path, "--workers", "2").wait_ready()
    pids = next(e["pids"] for e in server.logs() if e.get("msg") == "ready")
    server.proc.send_signal(signal.SIGKILL)
    server.wait()
    deadline = time.monotonic() + 30
    while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(alive(pid) for pid in pids), "orphaned workers still hold the port"


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
