"""s3:// datasets through fsspec/s3fs, against an S3-compatible server on 127.0.0.1.

The server is moto's (the same HTTP protocol MinIO and AWS speak); the trainer finds it
through the standard AWS_ENDPOINT_URL variable, as it would find MinIO in a cluster.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from support import s3
from support.remote_dataset import (
    assert_dataset_unavailable,
    assert_trained_on_iris,
    iris_csv,
    train_from,
)

pytestmark = pytest.mark.unit

BUCKET = "datasets"


@pytest.fixture(scope="module")
def s3_env() -> Iterator[dict[str, str]]:
    with s3.moto_server() as env:
        store = s3.client(env)
        store.create_bucket(Bucket=BUCKET)
        store.put_object(Bucket=BUCKET, Key="iris/train.csv", Body=iris_csv())
        yield env


def test_trains_from_s3_and_records_the_objects_sha256(
    tmp_path: Path, s3_env: dict[str, str]
) -> None:
    done = train_from(tmp_path, f"s3://{BUCKET}/iris/train.csv", s3_env)
    assert_trained_on_iris(done, tmp_path)


def test_a_missing_object_is_a_dataset_error(tmp_path: Path, s3_env: dict[str, str]) -> None:
    uri = f"s3://{BUCKET}/iris/absent.csv"
    assert_dataset_unavailable(train_from(tmp_path, uri, s3_env), uri)
