"""An S3-compatible server for tests: moto's, in this process, on one address of this host
(127.0.0.1, or a real node's bridge address so pods can reach it)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

# The local server's dummies; tests also grep for them where no credential may appear.
ACCESS_KEY = "AKIAPERENNIALTEST01"
SECRET_KEY = "perennial-test-secret-do-not-print"  # noqa: S105


def free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@contextmanager
def moto_server(host: str = "127.0.0.1") -> Iterator[dict[str, str]]:
    """Run the server; yield the environment a client needs (the standard AWS_* names)."""
    from moto.server import ThreadedMotoServer

    port = free_port(host)
    server = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
    server.start()
    try:
        yield {
            "AWS_ENDPOINT_URL": f"http://{host}:{port}",
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_DEFAULT_REGION": "us-east-1",
        }
    finally:
        server.stop()


def client(env: dict[str, str]) -> Any:
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=env["AWS_ENDPOINT_URL"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        region_name=env["AWS_DEFAULT_REGION"],
    )
