"""The liveness endpoint of a replica waiting for the Lease.

kopf serves `--liveness` only once it runs, that is once this replica leads. A standby must
pass the same probe, or the kubelet would restart it over and over; so until then this tiny
server answers on the same address, and hands the port over to kopf when the Lease is ours.
"""

from __future__ import annotations

import http.server
import json
import threading
import urllib.parse
from types import TracebackType


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802  (the stdlib's name)
        body = json.dumps({"leader": False, "state": "waiting for the lease"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass  # a probe every few seconds is not news


class StandbyHealth:
    def __init__(self, url: str | None) -> None:
        self.url = url
        self._server: http.server.ThreadingHTTPServer | None = None

    def __enter__(self) -> StandbyHealth:
        if not self.url:
            return self
        parsed = urllib.parse.urlparse(self.url)
        self._server = http.server.ThreadingHTTPServer(
            (parsed.hostname or "0.0.0.0", parsed.port or 80), _Handler
        )
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
