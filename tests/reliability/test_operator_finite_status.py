"""Finding 3, the operator half (issue 20): a non-finite number (a regression truth of 1e308
made an error sum +Inf) never makes a status patch fail. JSON has no NaN or Infinity: the
client wrote them anyway, the API server refused every later patch ("invalid JSON"), and
drift froze until the pods restarted. Here the real client sends to a real HTTP server."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from kubernetes import client

from perennial_operator.api.group import API_VERSION
from perennial_operator.k8s.kube import Kube, patch_changed_status

pytestmark = pytest.mark.unit


class ApiServer(BaseHTTPRequestHandler):
    """Answers like the API server's JSON decoder: strict JSON or 400."""

    bodies: list[bytes] = []

    def log_message(self, *_: object) -> None:
        pass

    def do_PATCH(self) -> None:  # noqa: N802 (http.server's name)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        ApiServer.bodies.append(body)

        def refuse(token: str) -> None:
            raise ValueError(f"{token} is not JSON")

        try:
            json.loads(body, parse_constant=refuse)
        except ValueError as exc:
            self._answer(400, {"kind": "Status", "message": f"invalid JSON patch: {exc}"})
            return
        self._answer(200, {"kind": "InferenceService", "metadata": {"name": "churn"}})

    def _answer(self, code: int, obj: dict[str, object]) -> None:
        data = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def kube() -> Iterator[Kube]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), ApiServer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    conf = client.Configuration()
    conf.host = f"http://127.0.0.1:{server.server_address[1]}"
    api = client.ApiClient(conf)
    ApiServer.bodies.clear()
    yield Kube(api)
    api.close()
    server.shutdown()
    server.server_close()


def test_a_status_with_infinity_and_nan_is_still_written(kube):
    isvc = {
        "apiVersion": API_VERSION, "kind": "InferenceService",
        "metadata": {"name": "churn", "namespace": "ml"}, "status": {},
    }  # fmt: skip
    drift = {"liveMetric": {"rmse": float("inf"), "mae": float("nan"), "n": 300}, "psi": 0.1}
    patch_changed_status(kube, isvc, {"drift": drift})  # raised ApiException 400 before
    sent = json.loads(ApiServer.bodies[-1])
    # A number that is not one becomes null: "unknown", and the rest of the patch lands.
    assert sent["status"]["drift"] == {
        "liveMetric": {"rmse": None, "mae": None, "n": 300},
        "psi": 0.1,
    }
