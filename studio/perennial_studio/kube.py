"""The one place that talks to the API server: raw JSON over urllib3.

The kubernetes client is used for its configuration loaders only (kubeconfig, in-cluster
token with rotation); requests are sent here so lists and watches stay plain dicts, never
model objects (deserialising 1,000 objects into client models costs seconds and memory).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import urllib3
from kubernetes import client, config


class ApiError(Exception):
    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class Resource:
    """A kind the Studio reads: where it lives in the API."""

    kind: str
    group: str  # "" for core
    version: str
    plural: str
    namespaced: bool = True

    def path(self, namespace: str | None = None, name: str | None = None) -> str:
        prefix = f"/api/{self.version}" if not self.group else f"/apis/{self.group}/{self.version}"
        ns = f"/namespaces/{quote(namespace)}" if namespace and self.namespaced else ""
        return f"{prefix}{ns}/{self.plural}" + (f"/{quote(name)}" if name else "")


def load_configuration(kubeconfig: str | None) -> client.Configuration:
    """In a pod (and no kubeconfig asked for): the ServiceAccount; otherwise the kubeconfig."""
    cfg = client.Configuration()
    if (
        not kubeconfig
        and os.environ.get("KUBERNETES_SERVICE_HOST")
        and not os.environ.get("KUBECONFIG")
    ):
        config.load_incluster_config(client_configuration=cfg)  # type: ignore[no-untyped-call]
    else:
        config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=kubeconfig or os.environ.get("KUBECONFIG"), client_configuration=cfg
        )
    return cfg


class Kube:
    """GET, LIST, WATCH, merge PATCH and POST of plain JSON."""

    def __init__(self, cfg: client.Configuration, pool_size: int = 16) -> None:
        self.cfg = cfg
        self.host = cfg.host.rstrip("/")
        verify = bool(cfg.verify_ssl)
        self.pool = urllib3.PoolManager(
            num_pools=4,
            maxsize=pool_size,
            cert_reqs="CERT_REQUIRED" if verify else "CERT_NONE",
            ca_certs=cfg.ssl_ca_cert if verify else None,
            cert_file=cfg.cert_file,
            key_file=cfg.key_file,
            assert_hostname=cfg.tls_server_name or None,
        )

    def _headers(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        headers = {"Accept": "application/json", "User-Agent": "perennial-studio"}
        # auth_settings() asks the configuration for the token each time, which re-reads a
        # rotated in-cluster token (its refresh hook); its key name varies across versions.
        settings: dict[str, dict[str, Any]] = dict(self.cfg.auth_settings())  # type: ignore[arg-type]
        for setting in settings.values():
            if setting.get("in") == "header" and setting.get("value"):
                headers[str(setting["key"]).title()] = str(setting["value"])
        if "Authorization" not in headers and (self.cfg.username or self.cfg.password):
            headers |= urllib3.make_headers(basic_auth=f"{self.cfg.username}:{self.cfg.password}")
        return headers | dict(extra or {})

    def _url(self, path: str, query: Mapping[str, Any] | None) -> str:
        params = {k: v for k, v in (query or {}).items() if v not in (None, "")}
        return f"{self.host}{path}" + (f"?{urlencode(params)}" if params else "")

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, Any] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        timeout: float = 30.0,
    ) -> dict[str, Any]:
        data = None if body is None else json.dumps(body).encode()
        headers = self._headers({"Content-Type": content_type} if data is not None else None)
        resp = self.pool.request(
            method,
            self._url(path, query),
            body=data,
            headers=headers,
            timeout=timeout,
            retries=False,
        )
        _raise_for(resp.status, resp.data)
        decoded = json.loads(resp.data) if resp.data else {}
        return decoded if isinstance(decoded, dict) else {}

    def get(self, path: str, query: Mapping[str, Any] | None = None) -> dict[str, Any]:
        return self.request("GET", path, query=query)

    def text(self, path: str, query: Mapping[str, Any] | None = None, timeout: float = 5.0) -> str:
        """A text endpoint (pods/log)."""
        resp = self.pool.request(
            "GET",
            self._url(path, query),
            headers=self._headers({"Accept": "*/*"}),
            timeout=timeout,
            retries=False,
        )
        _raise_for(resp.status, resp.data)
        return bytes(resp.data).decode("utf-8", "replace")

    def merge_patch(self, path: str, patch: dict[str, Any]) -> dict[str, Any]:
        return self.request("PATCH", path, body=patch, content_type="application/merge-patch+json")

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        return self.request("POST", path, body=body)

    def watch(
        self, path: str, query: Mapping[str, Any], timeout: float
    ) -> Iterator[dict[str, Any]]:
        """The events of one watch request, until the server ends it (timeoutSeconds)."""
        resp = self.pool.request(
            "GET",
            self._url(path, {**query, "watch": "true"}),
            headers=self._headers(),
            preload_content=False,
            timeout=urllib3.Timeout(connect=10.0, read=timeout),
            retries=False,
        )
        try:
            if resp.status != 200:
                _raise_for(resp.status, resp.read())
            buffer = b""
            for chunk in resp.stream(65536, decode_content=True):
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    if line.strip():
                        yield json.loads(line)
        finally:
            resp.release_conn()

    def close(self) -> None:
        self.pool.clear()


def _raise_for(status: int, data: bytes) -> None:
    if 200 <= status < 300:
        return
    try:
        body = json.loads(data)
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    message = str(body.get("message") or bytes(data[:300]).decode("utf-8", "replace"))
    raise ApiError(status, str(body.get("reason") or "Error"), message)
