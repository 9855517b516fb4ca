"""The local runtime's few API calls, over plain HTTPS with the kubeconfig's credentials.

The kubernetes package only loads the kubeconfig (certificates, tokens, exec plugins); the
requests are made here, so the runtime depends on the API server's wire format alone.
"""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

from kubernetes import client, config

PLURALS = {"ConfigMap": "configmaps", "Secret": "secrets", "Pod": "pods"}


class ApiError(RuntimeError):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"HTTP {code}: {message}")
        self.code = code


class Api:
    def __init__(self, kubeconfig: str) -> None:
        cfg = client.Configuration()
        load: Any = config.load_kube_config  # untyped in the package
        load(config_file=kubeconfig, client_configuration=cfg)
        self.server = str(cfg.host).rstrip("/")
        self._ctx = ssl.create_default_context(cafile=cfg.ssl_ca_cert)
        if cfg.cert_file:
            self._ctx.load_cert_chain(cfg.cert_file, cfg.key_file)
        if not cfg.verify_ssl:
            self._ctx.check_hostname = False
            self._ctx.verify_mode = ssl.CERT_NONE
        self._headers = {"Accept": "application/json"}
        token = (cfg.api_key or {}).get("authorization") or (cfg.api_key or {}).get("BearerToken")
        if token:
            self._headers["Authorization"] = token if " " in token else f"Bearer {token}"

    def _open(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        content_type: str = "application/json",
        timeout: float = 15.0,
    ) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.server + path, data=data, method=method)
        for key, value in {**self._headers, "Content-Type": content_type}.items():
            req.add_header(key, value)
        try:
            return urllib.request.urlopen(req, context=self._ctx, timeout=timeout)
        except urllib.error.HTTPError as err:
            detail = err.read().decode(errors="replace")
            try:
                detail = json.loads(detail).get("message", detail)
            except ValueError:
                pass
            raise ApiError(err.code, f"{method} {path}: {detail}") from None

    def call(self, method: str, path: str, body: Any = None, **kw: Any) -> dict[str, Any]:
        with self._open(method, path, body, **kw) as resp:
            result: dict[str, Any] = json.loads(resp.read() or b"{}")
            return result

    def get(self, path: str) -> dict[str, Any] | None:
        try:
            return self.call("GET", path)
        except ApiError as err:
            if err.code == 404:
                return None
            raise

    def create(self, path: str, body: dict[str, Any]) -> bool:
        """POST; False when it already exists."""
        try:
            self.call("POST", path, body)
        except ApiError as err:
            if err.code == 409:
                return False
            raise
        return True

    # --- what a pod worker needs (pod.PodApi) ------------------------------

    def read(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        return self.get(f"/api/v1/namespaces/{namespace}/{PLURALS[kind]}/{name}")

    def patch_pod_status(self, namespace: str, name: str, status: dict[str, Any]) -> bool:
        path = f"/api/v1/namespaces/{namespace}/pods/{name}/status"
        try:
            # A merge patch replaces lists whole: each container status is exactly ours.
            self.call(
                "PATCH", path, {"status": status}, content_type="application/merge-patch+json"
            )
        except ApiError as err:
            if err.code == 404:
                return False
            raise
        return True

    def delete_pod_now(self, namespace: str, name: str, uid: str | None = None) -> None:
        """What a kubelet does once the containers are gone: delete with grace 0."""
        body: dict[str, Any] = {"gracePeriodSeconds": 0}
        if uid:
            body["preconditions"] = {"uid": uid}  # never a new pod that took the same name
        try:
            self.call("DELETE", f"/api/v1/namespaces/{namespace}/pods/{name}", body)
        except ApiError as err:
            if err.code not in (404, 409):
                raise

    def register_logs(self, namespace: str, name: str, uid: str, files: dict[str, str]) -> None:
        """A kwok Logs object named after the pod (owned by it, so it goes with it)."""
        owner = {"apiVersion": "v1", "kind": "Pod", "name": name, "uid": uid}
        body = {
            "apiVersion": "kwok.x-k8s.io/v1alpha1",
            "kind": "Logs",
            "metadata": {"name": name, "namespace": namespace, "ownerReferences": [owner]},
            "spec": {
                "logs": [
                    {"containers": [container], "logsFile": path, "follow": True}
                    for container, path in files.items()
                ]
            },
        }
        self.create(f"/apis/kwok.x-k8s.io/v1alpha1/namespaces/{namespace}/logs", body)

    def claim_pod(self, pod: dict[str, Any], key: str, owner: str) -> bool:
        """Mark the pod as run by `owner` unless another runtime has; the resourceVersion
        makes two runtimes racing for one pod end with one owner."""
        meta = pod["metadata"]
        current = (meta.get("annotations") or {}).get(key)
        if current is not None:
            return bool(current == owner)
        patch = {
            "metadata": {"resourceVersion": meta["resourceVersion"], "annotations": {key: owner}}
        }
        try:
            self.call("PATCH", f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}",
                      patch, content_type="application/merge-patch+json")  # fmt: skip
        except ApiError as err:
            if err.code in (404, 409):
                return False  # gone, or changed under us: the next event tries again
            raise
        return True

    def node_ip(self, name: str) -> str:
        node = self.get(f"/api/v1/nodes/{name}") or {}
        for address in (node.get("status") or {}).get("addresses") or []:
            if address.get("type") == "InternalIP":
                return str(address["address"])
        return "127.0.0.1"

    # --- list and watch -----------------------------------------------------------------

    def _pods_path(self, namespace: str | None) -> str:
        return f"/api/v1/namespaces/{namespace}/pods" if namespace else "/api/v1/pods"

    def list_pods(self, namespace: str | None, field_selector: str) -> tuple[list[Any], str]:
        query = urllib.parse.urlencode({"fieldSelector": field_selector})
        found = self.call("GET", f"{self._pods_path(namespace)}?{query}")
        return list(found.get("items") or []), str(found["metadata"]["resourceVersion"])

    def watch_pods(
        self, namespace: str | None, field_selector: str, resource_version: str, timeout_s: int
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        """(type, object) events until the server ends the watch; ApiError(410) when the
        resource version is too old (list again)."""
        query = urllib.parse.urlencode(
            {
                "watch": "1",
                "fieldSelector": field_selector,
                "resourceVersion": resource_version,
                "allowWatchBookmarks": "true",
                "timeoutSeconds": str(timeout_s),
            }
        )
        path = f"{self._pods_path(namespace)}?{query}"
        with self._open("GET", path, timeout=timeout_s + 15) as resp:
            for line in resp:
                event = json.loads(line)
                if event["type"] == "ERROR":
                    status = event["object"]
                    raise ApiError(int(status.get("code", 500)), str(status.get("message")))
                yield event["type"], event["object"]
