"""s3:// datasets through fsspec/s3fs, against an S3-compatible server on 127.0.0.1.

The server is moto's (the same HTTP protocol MinIO and AWS speak); the trainer finds it
through the standard AWS_ENDPOINT_URL variable, as it would find MinIO in a cluster.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from sklearn.datasets import load_iris

pytestmark = pytest.mark.unit

BUCKET = "datasets"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def s3_env() -> Iterator[dict[str, str]]:
    import boto3
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    env = {
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "AWS_ACCESS_KEY_ID": "test-key",
        "AWS_SECRET_ACCESS_KEY": "test-secret",  # noqa: S105 - the local server's dummy
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    try:
        s3 = boto3.client(
            "s3",
            endpoint_url=env["AWS_ENDPOINT_URL"],
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
            region_name=env["AWS_DEFAULT_REGION"],
        )
        s3.create_bucket(Bucket=BUCKET)
        s3.put_object(Bucket=BUCKET, Key="iris/train.csv", Body=_iris_csv())
        yield env
    finally:
        server.stop()


def _iris_csv() -> bytes:
    return load_iris(as_frame=True).frame.to_csv(index=False).encode()


def _train(tmp_path: Path, uri: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    job = {
        "apiVersion": "perennial.dev/v1alpha1",
        "kind": "TrainingJob",
        "metadata": {"name": "iris-s3"},
        "spec": {
            "model": "iris",
            "task": "classification",
            "algorithm": "logistic_regression",
            "dataset": {"uri": uri, "target": "target"},
        },
    }
    (tmp_path / "job.yaml").write_text(yaml.safe_dump(job))
    script = Path(sys.executable).parent / "perennial-train"
    return subprocess.run(
        [str(script), "-f", str(tmp_path / "job.yaml"), "--output", str(tmp_path / "model")],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **env, "OMP_NUM_THREADS": "1"},
    )


def test_trains_from_s3_and_records_the_objects_sha256(
    tmp_path: Path, s3_env: dict[str, str]
) -> None:
    done = _train(tmp_path, f"s3://{BUCKET}/iris/train.csv", s3_env)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads((tmp_path / "model" / "result.json").read_text())
    assert result["dataset"]["sha256"] == hashlib.sha256(_iris_csv()).hexdigest()
    assert result["dataset"]["rows"] == 150
    assert result["metrics"]["accuracy"] > 0.8


def test_a_missing_object_is_a_dataset_error(tmp_path: Path, s3_env: dict[str, str]) -> None:
    from perennial_runtime.train.errors import DatasetUnavailable

    done = _train(tmp_path, f"s3://{BUCKET}/iris/absent.csv", s3_env)
    assert done.returncode == DatasetUnavailable.exit_code, done.stderr[-2000:]
    assert "s3://datasets/iris/absent.csv: cannot be read" in done.stderr
