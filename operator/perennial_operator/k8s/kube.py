"""The one place that talks to the API server: get, list, apply (SSA), create, patch,
status, events.

`KubeApi` is what the reconcilers and providers need of it; `Kube` is the real one, over the
Kubernetes client (tests/support/fake_kube.py holds an in-memory one for unit tests). Objects
are plain dicts in and out, so the pure layers never see client classes.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
from collections.abc import Callable
from types import MappingProxyType
from typing import Any, Protocol

from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException

from perennial_operator.api.group import API_VERSION, FIELD_MANAGER
from perennial_operator.api.timestamps import format_precise, format_time
from perennial_operator.k8s.errors import AlreadyExists, Conflict, NotFound

log = logging.getLogger(__name__)

PLURALS = MappingProxyType(
    {
        "ConfigMap": "configmaps",
        "Pod": "pods",
        "Service": "services",
        "Event": "events",
        "Node": "nodes",
        "Job": "jobs",
        "Deployment": "deployments",
        "HorizontalPodAutoscaler": "horizontalpodautoscalers",
        "TrainingJob": "trainingjobs",
        "ModelVersion": "modelversions",
        "InferenceService": "inferenceservices",
        "RetrainPolicy": "retrainpolicies",
        "ComputePool": "computepools",
        "MachineDeployment": "machinedeployments",
        "Machine": "machines",
        "PersistentVolume": "persistentvolumes",
        "PersistentVolumeClaim": "persistentvolumeclaims",
        "HTTPRoute": "httproutes",
    }
)
CLUSTER_SCOPED = frozenset({"Node", "ComputePool", "PersistentVolume"})


def now_iso() -> str:
    return format_time(dt.datetime.now(dt.UTC))


def now_precise() -> str:
    """With microseconds: for a stamp that identifies one event (a rejection a retry names)."""
    return format_precise(dt.datetime.now(dt.UTC))


def resource_path(
    api_version: str, kind: str, namespace: str | None, name: str | None = None
) -> str:
    prefix = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
    plural = PLURALS[kind]
    ns = "" if kind in CLUSTER_SCOPED or namespace is None else f"/namespaces/{namespace}"
    return f"{prefix}{ns}/{plural}" + (f"/{name}" if name else "")


class KubeApi(Protocol):
    """What reconcilers and providers ask of the API server. Errors are the client's
    ApiException, except where a method says otherwise."""

    def get(
        self, api_version: str, kind: str, namespace: str | None, name: str
    ) -> dict[str, Any] | None:
        """The object, or None when it does not exist. `name` may end in /scale."""
        ...

    def apply(self, manifest: dict[str, Any], *, force: bool = True) -> dict[str, Any]:
        """Server-side apply under our one field manager."""
        ...

    def create(self, manifest: dict[str, Any]) -> dict[str, Any]:
        """Raises AlreadyExists when the name is taken."""
        ...

    def delete(self, api_version: str, kind: str, namespace: str | None, name: str) -> None:
        """Gone already is fine."""
        ...

    def patch(
        self, api_version: str, kind: str, namespace: str | None, name: str, patch: dict[str, Any]
    ) -> dict[str, Any]:
        """A merge patch (RFC 7386). `name` may end in /scale."""
        ...

    def json_patch(
        self,
        api_version: str,
        kind: str,
        namespace: str | None,
        name: str,
        ops: list[dict[str, Any]],
        *,
        field_manager: str,
    ) -> dict[str, Any]:
        """A JSON patch (RFC 6902); a failed `test` is HTTP 422."""
        ...

    def patch_status(
        self,
        api_version: str,
        kind: str,
        namespace: str | None,
        name: str,
        status: dict[str, Any],
        *,
        resource_version: str | None = None,
    ) -> dict[str, Any]:
        """A merge patch of /status. Raises NotFound when the object is gone; with
        ``resource_version``, Conflict when the object is no longer at that version."""
        ...

    def event(self, obj: dict[str, Any], type_: str, reason: str, message: str) -> None:
        """A core/v1 Event about `obj`."""
        ...

    def evict(self, namespace: str, name: str) -> None:
        """Evict a pod (policy/v1 Eviction): the API server honours PodDisruptionBudgets and
        answers 429 when one does not allow it now. Gone already is fine."""
        ...

    def served_resources(self, api_version: str) -> list[str] | None:
        """The resources (plurals) the API server serves in `api_version`; None when it
        does not serve that group version at all."""
        ...

    def list(
        self,
        api_version: str,
        kind: str,
        namespace: str | None,
        label_selector: str = "",
        field_selector: str = "",
    ) -> list[dict[str, Any]]: ...


def patch_changed_status(kube: KubeApi, obj: dict[str, Any], status: dict[str, Any]) -> None:
    """Patch only the top-level status fields that differ from `obj`'s, so writers of other
    fields (a drift timer, say) are not overwritten; `obj` is updated in place."""
    previous = obj.get("status") or {}
    changed = {k: v for k, v in status.items() if previous.get(k) != v}
    if changed:
        meta = obj["metadata"]
        kube.patch_status(
            obj["apiVersion"], obj["kind"], meta.get("namespace"), meta["name"], changed
        )
        obj["status"] = {**previous, **changed}


def get_scale(
    kube: KubeApi, api_version: str, kind: str, namespace: str | None, name: str
) -> dict[str, Any] | None:
    """The autoscaling/v1 Scale of anything with a scale subresource."""
    return kube.get(api_version, kind, namespace, f"{name}/scale")


def patch_scale(
    kube: KubeApi, api_version: str, kind: str, namespace: str | None, name: str, replicas: int
) -> dict[str, Any]:
    return kube.patch(
        api_version, kind, namespace, f"{name}/scale", {"spec": {"replicas": replicas}}
    )


def finite_json(value: Any) -> Any:
    """`value` with NaN and ±Infinity as None: JSON has no such numbers, so the client would
    send invalid JSON and the API server refuse the whole write (issue 20, finding 3: one
    Infinity in a drift sum froze every later status patch). None reads as "unknown"."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite_json(v) for v in value]
    return value


# (connect, read) seconds. No single call we make (GET, apply, patch, a list of one kind in
# one namespace) legitimately takes near 30 s; kopf's watches use their own settings.
REQUEST_TIMEOUT: tuple[float, float] = (5.0, 30.0)


class Kube:
    """KubeApi over the Kubernetes client."""

    def __init__(
        self,
        api_client: ApiClient,
        fence: Callable[[], None] | None = None,
        request_timeout: tuple[float, float] = REQUEST_TIMEOUT,
    ) -> None:
        self.api = api_client
        # Leader election: called before every write; raises once this replica may not act.
        self.fence = fence
        # (connect, read) seconds on every request: a hung API server must not hold a handler
        # (and its per-object lock) forever; the timeout surfaces as a retryable error.
        self.request_timeout = request_timeout

    def _call(
        self,
        method: str,
        path: str,
        *,
        query: list[tuple[str, Any]] | None = None,
        body: Any = None,
        content_type: str = "application/json",
    ) -> dict[str, Any]:
        if self.fence is not None and method != "GET":
            self.fence()
            # The moment the fence let this write through (tests read it: a process frozen
            # after this line sends the request when it resumes, see docs/operator.md).
            log.debug("fenced write allowed: %s %s", method, path)
        # call_api is the client's generic entry point; its stubs lag the signature.
        api: Any = self.api
        body = finite_json(body)
        headers = {"Content-Type": content_type, "Accept": "application/json"}
        if not hasattr(api, "param_serialize"):  # kubernetes < 35: the legacy generator
            response = api.call_api(
                path,
                method,
                query_params=query or [],
                header_params=headers,
                body=body,
                response_type="object",
                auth_settings=["BearerToken"],
                _return_http_data_only=True,
                _preload_content=True,
                _request_timeout=self.request_timeout,
            )
            return response if isinstance(response, dict) else {}
        # kubernetes >= 35: serialize, send, and raise ApiException on non-2xx ourselves.
        request = api.param_serialize(
            method=method,
            resource_path=path,
            query_params=query or [],
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        raw = api.call_api(*request, _request_timeout=self.request_timeout)
        data = raw.read() or b""
        if not 200 <= raw.status <= 299:
            raise ApiException.from_response(
                http_resp=raw, body=data.decode("utf-8", "replace"), data=None
            )
        decoded = json.loads(data) if data else {}
        return decoded if isinstance(decoded, dict) else {}

    def get(
        self, api_version: str, kind: str, namespace: str | None, name: str
    ) -> dict[str, Any] | None:
        try:
            return self._call("GET", resource_path(api_version, kind, namespace, name))
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def apply(self, manifest: dict[str, Any], *, force: bool = True) -> dict[str, Any]:
        """Server-side apply under our one field manager."""
        meta = manifest["metadata"]
        path = resource_path(
            manifest["apiVersion"], manifest["kind"], meta.get("namespace"), meta["name"]
        )
        query: list[tuple[str, Any]] = [
            ("fieldManager", FIELD_MANAGER),
            ("force", str(force).lower()),
        ]
        return self._call(
            "PATCH",
            path,
            query=query,
            body=manifest,
            content_type="application/apply-patch+yaml",
        )

    def create(self, manifest: dict[str, Any]) -> dict[str, Any]:
        meta = manifest["metadata"]
        path = resource_path(manifest["apiVersion"], manifest["kind"], meta.get("namespace"))
        try:
            return self._call("POST", path, query=[("fieldManager", FIELD_MANAGER)], body=manifest)
        except ApiException as exc:
            if exc.status == 409:
                raise AlreadyExists(meta["name"]) from exc
            raise

    def delete(self, api_version: str, kind: str, namespace: str | None, name: str) -> None:
        try:
            self._call(
                "DELETE",
                resource_path(api_version, kind, namespace, name),
                body={"propagationPolicy": "Background"},
            )
        except ApiException as exc:
            if exc.status != 404:
                raise

    def evict(self, namespace: str, name: str) -> None:
        eviction = {
            "apiVersion": "policy/v1",
            "kind": "Eviction",
            "metadata": {"name": name, "namespace": namespace},
        }
        try:
            path = resource_path("v1", "Pod", namespace, name) + "/eviction"
            self._call("POST", path, body=eviction)
        except ApiException as exc:
            if exc.status != 404:
                raise

    def patch_status(
        self,
        api_version: str,
        kind: str,
        namespace: str | None,
        name: str,
        status: dict[str, Any],
        *,
        resource_version: str | None = None,
    ) -> dict[str, Any]:
        """A merge patch of /status (lists such as conditions are replaced whole). A
        resourceVersion in the patch is the API server's precondition: 409 if it moved on."""
        path = resource_path(api_version, kind, namespace, name) + "/status"
        body: dict[str, Any] = {"status": status}
        if resource_version is not None:
            body["metadata"] = {"resourceVersion": resource_version}
        try:
            return self._call("PATCH", path, body=body, content_type="application/merge-patch+json")
        except ApiException as exc:
            if exc.status == 404:
                raise NotFound(name) from exc
            if exc.status == 409 and resource_version is not None:
                raise Conflict(name) from exc
            raise

    def patch(
        self, api_version: str, kind: str, namespace: str | None, name: str, patch: dict[str, Any]
    ) -> dict[str, Any]:
        path = resource_path(api_version, kind, namespace, name)
        return self._call(
            "PATCH",
            path,
            query=[("fieldManager", FIELD_MANAGER)],
            body=patch,
            content_type="application/merge-patch+json",
        )

    def json_patch(
        self,
        api_version: str,
        kind: str,
        namespace: str | None,
        name: str,
        ops: list[dict[str, Any]],
        *,
        field_manager: str,
    ) -> dict[str, Any]:
        return self._call(
            "PATCH",
            resource_path(api_version, kind, namespace, name),
            query=[("fieldManager", field_manager)],
            body=ops,
            content_type="application/json-patch+json",
        )

    def served_resources(self, api_version: str) -> list[str] | None:
        try:
            group = self._call("GET", f"/apis/{api_version}")
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return [str(r.get("name")) for r in group.get("resources") or []]

    def event(self, obj: dict[str, Any], type_: str, reason: str, message: str) -> None:
        """A core/v1 Event about `obj`, for `kubectl describe` and audit logs."""
        meta = obj["metadata"]
        namespace = meta.get("namespace") or "default"
        stamp = now_iso()
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{meta['name']}.", "namespace": namespace},
            "involvedObject": {
                "apiVersion": obj.get("apiVersion", API_VERSION),
                "kind": obj["kind"],
                "name": meta["name"],
                "namespace": meta.get("namespace"),
                "uid": meta.get("uid"),
            },
            "type": type_,
            "reason": reason,
            "message": message[:1024],
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
            "source": {"component": "perennial-operator"},
            "reportingComponent": "perennial-operator",
        }
        self._call("POST", resource_path("v1", "Event", namespace), body=event)

    def list(
        self,
        api_version: str,
        kind: str,
        namespace: str | None,
        label_selector: str = "",
        field_selector: str = "",
    ) -> list[dict[str, Any]]:
        query = [("labelSelector", label_selector)] if label_selector else []
        query += [("fieldSelector", field_selector)] if field_selector else []
        items = self._call("GET", resource_path(api_version, kind, namespace), query=query)
        return list(items.get("items") or [])
