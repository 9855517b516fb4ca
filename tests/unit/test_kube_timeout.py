"""Every API call carries a request timeout: a server that accepts and never answers
must not hang a handler (a real socket, the real kubernetes client)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import kopf
import pytest
from kubernetes import client

from perennial_operator.k8s.errors import as_kopf_errors
from perennial_operator.k8s.kube import Kube


@pytest.fixture
def silent_server() -> Iterator[str]:
    """Accepts connections, reads nothing back, never answers."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            held.append(conn)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    port = listener.getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    stop.set()
    thread.join(timeout=2)
    for conn in held:
        conn.close()
    listener.close()


def _kube(host: str, read_timeout: float) -> Kube:
    configuration = client.Configuration()
    configuration.host = host
    configuration.retries = 0  # urllib3 would otherwise retry the read and multiply the wait
    return Kube(client.ApiClient(configuration), request_timeout=(1.0, read_timeout))


def test_get_against_a_silent_server_times_out_as_a_retryable_error(silent_server: str) -> None:
    kube = _kube(silent_server, read_timeout=0.5)
    started = time.monotonic()
    with pytest.raises(kopf.TemporaryError, match="unreachable"):
        with as_kopf_errors("TrainingJob ns/x"):
            kube.get("perennial.dev/v1alpha1", "TrainingJob", "ns", "x")
    assert time.monotonic() - started < 5  # bounded by the timeout, not by the server


def test_writes_time_out_too(silent_server: str) -> None:
    kube = _kube(silent_server, read_timeout=0.5)
    started = time.monotonic()
    with pytest.raises(kopf.TemporaryError):
        with as_kopf_errors("Job ns/x"):
            kube.apply(
                {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": {"name": "x", "namespace": "ns"},
                }
            )
    assert time.monotonic() - started < 5


def test_the_default_timeout_is_finite() -> None:
    kube = Kube(client.ApiClient(client.Configuration()))
    connect, read = kube.request_timeout
    assert 0 < connect <= read < 120
