"""How to install, configure and start each server under test; how to ask it one row."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
# uvloop 0.22 made get_event_loop() raise outside a loop, which MLServer 1.7.1 workers call.
PEER_PACKAGES = ["mlserver==1.7.1", "mlserver-sklearn==1.7.1", "bentoml==1.4.40", "uvloop<0.22"]
# The peers unpickle our fitted pipelines: the same versions of what those are made of.
SAME_AS_OURS = ("scikit-learn", "lightgbm")


def cache_dir() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "perennial" / "bench"


def ensure_peers_venv() -> Path:
    """A separate venv for the peers, so their pins never touch the project's."""
    venv = cache_dir() / "peers"
    python = venv / "bin" / "python"
    stamp = venv / ".installed"
    from importlib.metadata import version

    packages = [*PEER_PACKAGES, *(f"{name}=={version(name)}" for name in SAME_AS_OURS)]
    if stamp.exists() and stamp.read_text() == " ".join(packages):
        return python
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--upgrade", "pip"], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", *packages], check=True)
    stamp.write_text(" ".join(packages))
    return python


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    subprocess.run(["apt-get", "update", "-qq"], check=True)
    subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True)
    return shutil.which("wrk") or "wrk"


@dataclass
class Target:
    """One server with one model: how to start it, where to POST, what to send."""

    server: str
    model: str
    command: list[str]
    env: dict[str, str]
    ready_path: str
    path: str
    body: dict[str, Any]
    cwd: Path | None = None


def ours(model: str, model_dir: Path, port: int, row: list[float], workers: int) -> Target:
    return Target(
        "perennial",
        model,
        [
            sys.executable,
            "-m",
            "perennial_runtime.serve",
            "--model-dir",
            str(model_dir),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--name",
            model,
            "--log-level",
            "warning",
        ],
        {},
        "/v2/health/ready",
        f"/v1/models/{model}:predict",
        {"instances": [row]},
    )


def mlserver(
    python: Path,
    model: str,
    joblib_file: Path,
    work: Path,
    port: int,
    row: list[float],
    names: list[str] | None = None,
) -> Target:
    """MLServer + mlserver-sklearn with adaptive batching (the KServe V2 runtime).

    With ``names`` the row goes as one input per column with MLServer's pandas codec
    (``content_type: pd``), so the pipeline gets a DataFrame with its column names (a
    pipeline that selects columns by name needs them); else as one FP64 tensor.
    """
    folder = work / f"mlserver-{model}"
    (folder / model).mkdir(parents=True, exist_ok=True)
    shutil.copy(joblib_file, folder / model / "model.joblib")
    (folder / "settings.json").write_text(
        json.dumps(
            {
                "host": "127.0.0.1",
                "http_port": port,
                "grpc_port": port + 1,
                "metrics_port": port + 2,
                "debug": False,
            }
        )
    )
    (folder / model / "model-settings.json").write_text(
        json.dumps(
            {
                "name": model,
                "implementation": "mlserver_sklearn.SKLearnModel",
                "parameters": {"uri": "./model.joblib"},
                "max_batch_size": 64,
                "max_batch_time": 0.002,
            }
        )
    )
    tensor = {"name": "predict", "shape": [1, len(row)], "datatype": "FP64", "data": row}
    body: dict[str, Any] = {"inputs": [tensor]}
    if names is not None:
        columns = [
            {"name": n, "shape": [1], "datatype": "FP64", "data": [v]}
            for n, v in zip(names, row, strict=True)
        ]
        body = {"parameters": {"content_type": "pd"}, "inputs": columns}
    return Target(
        "mlserver",
        model,
        [str(python.parent / "mlserver"), "start", str(folder)],
        {},
        f"/v2/models/{model}/ready",
        f"/v2/models/{model}/infer",
        body,
    )


def bentoml(
    python: Path, model: str, joblib_file: Path, port: int, row: list[float], workers: int
) -> Target:
    env = {
        "BENCH_MODEL": str(joblib_file),
        "BENCH_WORKERS": str(workers),
        "BENTOML_DO_NOT_TRACK": "true",
        "BENTOML_HOME": str(cache_dir() / "bentoml"),
    }
    return Target(
        "bentoml",
        model,
        [
            str(python.parent / "bentoml"),
            "serve",
            "bento_service:Model",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        env,
        "/readyz",
        "/predict",
        {"x": [row]},
        cwd=HERE,
    )
