"""Finding 10 (issue 20), the dataset half: a training pod reads at most
spec.dataset.maxBytes. A server that keeps sending, one that announces a huge body, or a
file far larger than meant ends the job DatasetUnavailable (exit 4, the outcome in the
termination message) instead of being read whole into the pod's memory. Real HTTP on
127.0.0.1, the real trainer entry point."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from perennial_runtime import contract
from perennial_runtime.train import datasets
from perennial_runtime.train.errors import BadSpec, DatasetUnavailable
from perennial_runtime.train.spec import DEFAULT_DATASET_MAX_BYTES, parse_spec
from support.training import validate_process

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
MIB = 1024 * 1024
ROW = b"1,0\n"


class Hostile(http.server.BaseHTTPRequestHandler):
    """/stream: valid CSV, 32 MiB, no Content-Length (read until close);
    /announced: Content-Length 10 GiB, then a few rows and close;
    /small: a valid 2-row CSV."""

    sent: dict[str, int] = {}

    def do_GET(self) -> None:  # noqa: N802 - the http.server name
        self.protocol_version = "HTTP/1.0"
        self.send_response(200)
        self.send_header("Content-Type", "text/csv")
        sent = 0
        if self.path == "/announced":
            self.send_header("Content-Length", str(10 * 1024**3))
        self.end_headers()
        try:
            self.wfile.write(b"x,y\n")
            if self.path == "/small":
                self.wfile.write(b"1,0\n2,1\n")
                return
            rows = 4096 if self.path == "/announced" else 32 * MIB // len(ROW)
            block = ROW * 4096
            for _ in range(rows // 4096):
                self.wfile.write(block)
                sent += len(block)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the reader gave up: what we want
        finally:
            Hostile.sent[self.path] = sent

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hostile)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_port}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def job_manifest(tmp_path: Path, uri: str, max_bytes: int | None) -> Path:
    dataset: dict[str, object] = {"uri": uri, "target": "y"}
    if max_bytes is not None:
        dataset["maxBytes"] = max_bytes
    body = {"apiVersion": "perennial.dev/v1alpha1", "kind": "TrainingJob",
            "metadata": {"name": "bound"},
            "spec": {"model": "bound", "task": "classification", "dataset": dataset}}  # fmt: skip
    path = tmp_path / "tj.yaml"
    path.write_text(yaml.safe_dump(body))
    return path


def test_an_endless_stream_stops_at_max_bytes(server: str, tmp_path: Path) -> None:
    path = job_manifest(tmp_path, f"{server}/stream", MIB)
    code, report = validate_process(path, tmp_path)
    assert code == contract.EXIT_DATASET_UNAVAILABLE, report
    assert report["outcome"] == "DatasetUnavailable"
    assert "spec.dataset.maxBytes (1048576 bytes" in str(report["message"])


def test_an_announced_huge_body_is_refused_before_reading(server: str) -> None:
    with pytest.raises(DatasetUnavailable, match="10737418240 bytes"):
        datasets.load(f"{server}/announced", "csv", Path("/"), 64 * MIB)
    # Nothing of the body was asked for: at most what sat in the socket buffers was sent.
    assert Hostile.sent.get("/announced", 0) < 4 * MIB


def test_a_file_over_the_bound_is_refused_and_one_under_it_is_read(
    server: str, tmp_path: Path
) -> None:
    big = tmp_path / "big.csv"
    big.write_bytes(b"x,y\n" + ROW * (MIB // len(ROW)))
    with pytest.raises(DatasetUnavailable, match="maxBytes"):
        datasets.load(f"file://{big}", "csv", tmp_path, MIB)
    assert datasets.load(f"file://{big}", "csv", tmp_path, 2 * MIB).rows == MIB // len(ROW)
    assert datasets.load(f"{server}/small", "csv", tmp_path, 12).rows == 2  # exactly 12 bytes


def test_the_bound_is_a_spec_field_with_the_crds_default() -> None:
    crd = yaml.safe_load((ROOT / "crds" / "trainingjob.yaml").read_text())
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    field = schema["properties"]["spec"]["properties"]["dataset"]["properties"]["maxBytes"]
    assert field["default"] == DEFAULT_DATASET_MAX_BYTES
    spec = {"model": "m", "task": "classification", "dataset": {"uri": "builtin://iris"}}
    assert parse_spec(spec).dataset.max_bytes == DEFAULT_DATASET_MAX_BYTES
    with pytest.raises(BadSpec, match="maxBytes"):
        parse_spec({**spec, "dataset": {"uri": "builtin://iris", "maxBytes": 0}})
