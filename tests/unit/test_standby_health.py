"""A replica waiting for the Lease answers the liveness probe itself, then frees the port
for kopf's own endpoint."""

from __future__ import annotations

import json
import socket
import urllib.request

import pytest

from perennial_operator.standby import StandbyHealth

pytestmark = pytest.mark.unit


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_the_probe_passes_while_waiting_and_the_port_is_free_after() -> None:
    port = free_port()
    with StandbyHealth(f"http://127.0.0.1:{port}/healthz"):
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
            assert response.status == 200
            assert json.loads(response.read())["leader"] is False
    with socket.socket() as sock:  # kopf binds the same address next
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))


def test_no_url_no_server() -> None:
    with StandbyHealth(None) as standby:
        assert standby._server is None
