"""s3:// datasets through fsspec/s3fs, against an S3-compatible server on 127.0.0.1.

The server is moto's (the same HTTP protocol MinIO and AWS speak); the trainer finds it
through the standard AWS_ENDPOINT_URL variable, as it would find MinIO in a cluster.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.remote_dataset import (
    assert_dataset_unavailable,
    assert_trained_on_iris,
    iris_csv,
    train_from,
)

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
        s3.put_object(Bucket=BUCKET, Key="iris/train.csv", Body=iris_csv())
        yield env
    finally:
        server.stop()


def test_trains_from_s3_and_records_the_objects_sha256(
    tmp_path: Path, s3_env: dict[str, str]
) -> None:
    done = train_from(tmp_path, f"s3://{BUCKET}/iris/train.csv", s3_env)
    assert_trained_on_iris(done, tmp_path)


def test_a_missing_object_is_a_dataset_error(tmp_path: Path, s3_env: dict[str, str]) -> None:
    uri = f"s3://{BUCKET}/iris/absent.csv"
    assert_dataset_unavailable(train_from(tmp_path, uri, s3_env), uri)
