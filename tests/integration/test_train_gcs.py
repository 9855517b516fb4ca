"""gs:// datasets through fsspec/gcsfs, against a GCS server on 127.0.0.1.

The server is fake-gcs-server (Go, speaks the GCS JSON API), built and cached by
`make k8s-build`; the trainer finds it through the standard STORAGE_EMULATOR_HOST variable,
which gcsfs reads in place of https://storage.googleapis.com.

No credentials are visible to the trainer (no GOOGLE_APPLICATION_CREDENTIALS, an empty gcloud
config, NO_GCE_CHECK): gcsfs then goes anonymous, which is what an emulator wants. Do not force
token="anon" instead: gcsfs's default ExtendedGcsFileSystem then gives its gRPC bucket-layout
probe real (anonymous) credentials, and that probe speaks TLS to the plain-HTTP emulator and
retries for 60 s per open before it falls back; with no credentials it fails at once.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from perennial_hack.cluster import process
from perennial_hack.cluster.build import fake_gcs_server_path
from support.remote_dataset import (
    assert_dataset_unavailable,
    assert_trained_on_iris,
    iris_csv,
    train_from,
)

pytestmark = pytest.mark.integration  # needs a Go-built server (make k8s-build)

BUCKET = "datasets"
KEY = "iris/train.csv"
START_TIMEOUT_S = 30.0
HIDDEN = ("GOOGLE_APPLICATION_CREDENTIALS",)  # see the module docstring


def _request(method: str, url: str, body: bytes, content_type: str) -> None:
    req = urllib.request.Request(
        url, data=body, method=method, headers={"Content-Type": content_type}
    )
    with urllib.request.urlopen(req, timeout=30) as response:
        assert response.status == 200, f"{method} {url}: HTTP {response.status}"


def _wait_healthy(base: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"fake-gcs-server exited {proc.returncode}:\n{log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{base}/_internal/healthcheck", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)
    pytest.fail(f"fake-gcs-server not healthy after {START_TIMEOUT_S:.0f}s:\n{log.read_text()}")


@pytest.fixture(scope="module")
def gcs_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    binary = fake_gcs_server_path()
    if not os.access(binary, os.X_OK):
        pytest.fail(f"fake-gcs-server is not built ({binary}): run `make k8s-build`")
    work = tmp_path_factory.mktemp("gcs")
    log = work / "fake-gcs-server.log"
    (port,) = process.free_ports(1)
    argv = [
        str(binary),
        "-scheme",
        "http",
        "-host",
        "127.0.0.1",
        f"-port={port}",
        "-backend",
        "memory",
        "-log-level",
        "warn",
    ]
    # Its own process group, SIGKILLed if this pytest dies: no orphan outlives the session.
    proc = process.spawn(argv, log, tie_to_parent=True)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(base, proc, log)
        bucket = json.dumps({"name": BUCKET}).encode()
        _request("POST", f"{base}/storage/v1/b?project=test", bucket, "application/json")
        upload = f"{base}/upload/storage/v1/b/{BUCKET}/o?uploadType=media&name={quote(KEY)}"
        _request("POST", upload, iris_csv(), "text/csv")
        (work / "gcloud").mkdir()
        yield {
            "STORAGE_EMULATOR_HOST": base,
            "CLOUDSDK_CONFIG": str(work / "gcloud"),  # no developer's gcloud ADC
            "NO_GCE_CHECK": "true",  # no metadata-server probe (google-auth and gcsfs)
            # gcsfs' bucket-type probe uses an API the emulator lacks: it would warn per read.
            "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false",
        }
    finally:
        process.stop([proc.pid])
        proc.wait(timeout=10)


def test_trains_from_gcs_and_records_the_objects_sha256(
    tmp_path: Path, gcs_env: dict[str, str]
) -> None:
    done = train_from(tmp_path, f"gs://{BUCKET}/{KEY}", gcs_env, hide=HIDDEN)
    assert_trained_on_iris(done, tmp_path)


def test_a_missing_object_is_a_dataset_error(tmp_path: Path, gcs_env: dict[str, str]) -> None:
    uri = f"gs://{BUCKET}/iris/absent.csv"
    assert_dataset_unavailable(train_from(tmp_path, uri, gcs_env, hide=HIDDEN), uri)
