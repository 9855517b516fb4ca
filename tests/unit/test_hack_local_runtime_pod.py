"""A pod worker end to end without a cluster: fake API, stand-in runtime commands."""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from perennial_hack.local_runtime.pod import PodWorker
from perennial_hack.local_runtime.volumes import Layout
from support.poll import until

pytestmark = pytest.mark.unit

# Stand-ins for the console scripts: write the termination log the runtime passes, print
# where the spec volume ended up, exit with the code the container's env asks for.
FAKE_TRAIN = f"""#!{sys.executable}
import os, sys, time
args = sys.argv[1:]
log = args[args.index("--termination-log") + 1]
print("args", args, "pvc", os.environ.get("PERENNIAL_PVC_ROOT"), flush=True)
time.sleep(float(os.environ.get("FAKE_SLEEP", "0")))
open(log, "w").write(os.environ.get("FAKE_MESSAGE", "ok"))
sys.exit(int(os.environ.get("FAKE_EXIT", "0")))
"""
FAKE_SERVE = f"""#!{sys.executable}
import os, signal, sys, time
def stop(*_):
    if os.environ.get("FAKE_TERM_FILE"):
        open(os.environ["FAKE_TERM_FILE"], "w").write(str(time.time()))
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
print("serving", sys.argv[1:], flush=True)
while True:
    time.sleep(0.05)
"""


class FakeApi:
    def __init__(self) -> None:
        self.statuses: list[dict[str, Any]] = []
        self.deleted: list[str] = []
        self.lock = threading.Lock()

    def read(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        return {"data": {"trainingjob.yaml": "spec: {}\n"}} if kind == "ConfigMap" else None

    def patch_pod_status(self, namespace: str, name: str, status: dict[str, Any]) -> bool:
        with self.lock:
            self.statuses.append(json.loads(json.dumps(status)))
        return True

    def register_logs(self, namespace: str, name: str, uid: str, files: dict[str, str]) -> None:
        self.logs = files

    def delete_pod_now(self, namespace: str, name: str, uid: str | None = None) -> None:
        self.deleted.append(f"{namespace}/{name}/{uid}")

    def last(self) -> dict[str, Any]:
        with self.lock:
            return self.statuses[-1] if self.statuses else {}


@pytest.fixture
def bin_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "bin"
    folder.mkdir()
    for name, text in (("perennial-train", FAKE_TRAIN), ("perennial-serve", FAKE_SERVE)):
        (folder / name).write_text(text)
        (folder / name).chmod(0o755)
    return folder


def pod(init_env: dict[str, str], main: dict[str, Any], policy: str = "Never") -> dict[str, Any]:
    mounts = [
        {"name": "spec", "mountPath": "/etc/perennial"},
        {"name": "art", "mountPath": "/mnt/pvc/art"},
    ]
    env = [{"name": "PERENNIAL_PVC_ROOT", "value": "/mnt/pvc"}]
    extra = [{"name": k, "value": v} for k, v in init_env.items()]
    return {
        "metadata": {"name": "p", "namespace": "ns", "uid": "uid-1"},
        "spec": {
            "restartPolicy": policy,
            "terminationGracePeriodSeconds": 5,
            "volumes": [
                {"name": "spec", "configMap": {"name": "cm"}},
                {"name": "art", "persistentVolumeClaim": {"claimName": "art"}},
            ],
            "initContainers": [
                {
                    "name": "validate",
                    "volumeMounts": mounts,
                    "command": ["perennial-train"],
                    "args": ["validate", "-f", "/etc/perennial/x"],
                    "env": env + extra,
                }
            ],
            "containers": [{"volumeMounts": mounts, "env": env, **main}],
        },
    }


def worker(spec: dict[str, Any], api: FakeApi, tmp_path: Path, bin_dir: Path) -> PodWorker:
    return PodWorker(
        spec,
        api=api,
        layout=Layout(tmp_path / "state"),
        bin_dir=bin_dir,
        ips=("127.0.0.9", "10.0.0.1"),
    )


def test_init_then_main_container_and_a_kubelet_shaped_success(tmp_path: Path, bin_dir: Path):
    api = FakeApi()
    main = {
        "name": "train",
        "command": ["perennial-train"],
        "args": ["--output", "/mnt/pvc/art/m"],
        "terminationMessagePath": "/dev/termination-log",
    }
    w = worker(pod({}, main), api, tmp_path, bin_dir)
    w.start()
    w.join(timeout=30)
    final = api.last()
    assert final["phase"] == "Succeeded"
    assert final["podIP"] == "127.0.0.9"
    assert final["containerStatuses"][0]["state"]["terminated"]["message"] == "ok"
    phases = [s["phase"] for s in api.statuses]
    assert phases.index("Pending") < phases.index("Running") < phases.index("Succeeded")
    assert any(s["initContainerStatuses"][0]["state"].get("running") for s in api.statuses)
    log = (tmp_path / "state/pods/uid-1/logs/train.log").read_text()
    assert str(tmp_path / "state/pvc/ns/art/m") in log and str(tmp_path / "state/pvc/ns") in log
    assert api.deleted == []


def test_a_failing_init_container_fails_the_pod_with_its_message(tmp_path: Path, bin_dir: Path):
    api = FakeApi()
    init = {"FAKE_EXIT": "3", "FAKE_MESSAGE": '{"outcome":"DataInvalid"}'}
    w = worker(pod(init, {"name": "train", "command": ["perennial-train"]}), api, tmp_path, bin_dir)
    w.start()
    w.join(timeout=30)
    final = api.last()
    term = final["initContainerStatuses"][0]["state"]["terminated"]
    assert final["phase"] == "Failed"
    assert (term["exitCode"], term["reason"], term["message"]) == (
        3,
        "Error",
        '{"outcome":"DataInvalid"}',
    )
    assert "waiting" in final["containerStatuses"][0]["state"]


def test_a_foreign_command_is_refused_with_a_clear_status(tmp_path: Path, bin_dir: Path):
    api = FakeApi()
    w = worker(
        pod({}, {"name": "train", "command": ["bash", "-c", "rm -rf /"]}), api, tmp_path, bin_dir
    )
    w.start()
    w.join(timeout=30)
    term = api.last()["containerStatuses"][0]["state"]["terminated"]
    assert api.last()["phase"] == "Failed"
    assert (term["exitCode"], term["reason"]) == (128, "StartError")
    assert "runs only perennial-train and perennial-serve" in term["message"]


def test_deletion_stops_a_server_and_confirms(tmp_path: Path, bin_dir: Path):
    api = FakeApi()
    main = {
        "name": "serve",
        "command": ["perennial-serve"],
        "args": ["--model-dir", "/mnt/pvc/art/m"],
    }
    w = worker(pod({}, main, policy="Always"), api, tmp_path, bin_dir)
    w.start()
    until(
        lambda: (
            api.last().get("phase") == "Running" and api.last()["containerStatuses"][0]["ready"]
        ),
        timeout=30,
        message="serve running and ready",
    )
    log = tmp_path / "state/pods/uid-1/logs/serve.log"
    until(lambda: log.exists() and "--host" in log.read_text(), timeout=10, message="serve log")
    assert "'--host', '127.0.0.9'" in log.read_text()
    w.stop(deleting=True, grace_s=5)
    w.join(timeout=30)
    assert not w.is_alive()
    assert api.deleted == ["ns/p/uid-1"]
    assert not (tmp_path / "state/pods/uid-1").exists()
    assert (tmp_path / "state/pvc/ns/art").is_dir()  # claims outlive pods


def test_deletion_runs_the_prestop_sleep_before_sigterm(tmp_path: Path, bin_dir: Path):
    # As the kubelet: a deleted serving pod keeps serving for its preStop sleep (while the
    # Service's endpoints forget it), then gets SIGTERM, all within the grace period.
    api = FakeApi()
    term = tmp_path / "sigterm-at"
    main = {"name": "serve", "command": ["perennial-serve"], "args": ["--model-dir", "/m"],
            "lifecycle": {"preStop": {"sleep": {"seconds": 1}}}}  # fmt: skip
    spec = pod({}, main, policy="Always")
    spec["spec"]["containers"][0]["env"].append({"name": "FAKE_TERM_FILE", "value": str(term)})
    w = worker(spec, api, tmp_path, bin_dir)
    w.start()
    log = tmp_path / "state/pods/uid-1/logs/serve.log"
    until(lambda: log.exists() and "serving" in log.read_text(), timeout=30, message="serving")
    asked = time.time()
    w.stop(deleting=True, grace_s=5)
    w.join(timeout=30)
    assert 1.0 <= float(term.read_text()) - asked < 4.0
    assert api.deleted == ["ns/p/uid-1"]


class FlakyApi(FakeApi):
    """Every other status patch fails, as an overloaded API server might."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def patch_pod_status(self, namespace: str, name: str, status: dict[str, Any]) -> bool:
        self.calls += 1
        if self.calls % 2:
            raise RuntimeError("HTTP 500: etcdserver: request timed out")
        return super().patch_pod_status(namespace, name, status)


def test_api_errors_on_status_cost_nothing_but_a_retry(tmp_path: Path, bin_dir: Path):
    api = FlakyApi()
    main = {"name": "train", "command": ["perennial-train"], "args": ["--output", "/mnt/pvc/art/m"]}
    w = worker(pod({}, main), api, tmp_path, bin_dir)
    w.start()
    w.join(timeout=60)
    assert api.last()["phase"] == "Succeeded"
    assert api.last()["containerStatuses"][0]["state"]["terminated"]["message"] == "ok"
