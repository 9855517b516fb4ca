"""Kubeconfigs, and a minimal HTTPS client for the few calls `up` makes (stdlib only)."""

from __future__ import annotations

import base64
import json
import ssl
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any


def kubeconfig(
    cluster: str, server: str, ca_pem: bytes, cert_pem: bytes, key_pem: bytes
) -> dict[str, Any]:
    """A self-contained kubeconfig (certificates embedded, so it can be copied elsewhere)."""

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode()

    user = f"{cluster}-user"
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": cluster,
                "cluster": {"server": server, "certificate-authority-data": b64(ca_pem)},
            }
        ],
        "users": [
            {
                "name": user,
                "user": {"client-certificate-data": b64(cert_pem), "client-key-data": b64(key_pem)},
            }
        ],
        "contexts": [{"name": cluster, "context": {"cluster": cluster, "user": user}}],
        "current-context": cluster,
        "preferences": {},
    }


class LocalApi:
    """Just enough of the API for bringing a cluster up: GET, POST and health endpoints."""

    def __init__(self, server: str, ca: Path, cert: Path, key: Path) -> None:
        self.server = server
        self._ctx = ssl.create_default_context(cafile=str(ca))
        self._ctx.load_cert_chain(str(cert), str(key))

    def _request(
        self, method: str, path: str, body: Any = None, timeout: float = 5.0
    ) -> tuple[int, bytes]:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.server + path, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, context=self._ctx, timeout=timeout) as resp:
                return int(resp.status), bytes(resp.read())
        except urllib.error.HTTPError as err:
            return err.code, err.read()

    def healthy(self, path: str = "/readyz") -> bool:
        try:
            code, _ = self._request("GET", path, timeout=2.0)
        except (OSError, ssl.SSLError):
            return False
        return code == 200

    def get(self, path: str) -> dict[str, Any] | None:
        """The object at path, or None on 404."""
        code, data = self._request("GET", path)
        if code == 404:
            return None
        if code != 200:
            raise RuntimeError(f"GET {path}: HTTP {code}: {data[:300]!r}")
        result: dict[str, Any] = json.loads(data)
        return result

    def create(self, path: str, body: dict[str, Any]) -> None:
        """POST body; an existing object (409) is fine."""
        code, data = self._request("POST", path, body)
        if code not in (200, 201, 202, 409):
            raise RuntimeError(f"POST {path}: HTTP {code}: {data[:300]!r}")


def http_ok(url: str, timeout: float = 2.0) -> bool:
    """GET url; for the plain-HTTP etcd and self-signed component health endpoints."""
    ctx = ssl.create_default_context()
    # kube-controller-manager and kube-scheduler serve /healthz with a throwaway self-signed
    # certificate; we only ask whether the process answers, over loopback.
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        with urllib.request.urlopen(url, context=ctx, timeout=timeout) as resp:
            return int(resp.status) == 200
    except (OSError, ssl.SSLError):
        return False
