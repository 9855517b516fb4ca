"""The only module that talks to the API server: the user's kubeconfig, the user's rights.

Everything the CLI writes goes through `merge_patch` (what `kubectl patch --type merge`
sends, under the field manager perennial-cli), so it can do nothing the user could not do
with kubectl.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from kubernetes import client, watch
from kubernetes import config as _config
from kubernetes.client.exceptions import ApiException

from perennial_cli.errors import KubeError

config: Any = _config  # the loaders are untyped

GROUP = "perennial.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
PLURALS = {
    "TrainingJob": "trainingjobs",
    "ModelVersion": "modelversions",
    "InferenceService": "inferenceservices",
    "RetrainPolicy": "retrainpolicies",
    "ComputePool": "computepools",
}
CLUSTER_SCOPED = {"ComputePool"}
MANAGER = "perennial-cli"  # managedFields (and a ModelVersion's status.stageHistory) name it


def _explain(err: ApiException, what: str) -> KubeError:
    if err.status == 403:
        return KubeError(f"forbidden: your kubeconfig's user may not {what}")
    if err.status == 404:
        return KubeError(f"not found: {what}")
    if err.status == 422:
        return KubeError(f"refused by the API server ({what}): {_reason(err)}")
    return KubeError(f"{what}: HTTP {err.status}: {_reason(err)}")


def _reason(err: ApiException) -> str:
    import json

    try:
        return str(json.loads(err.body or "{}").get("message") or err.reason)
    except ValueError:
        return str(err.reason)


@dataclass
class Kube:
    api: Any  # kubernetes.client.ApiClient (its methods are untyped)
    namespace: str

    @property
    def _custom(self) -> Any:
        return client.CustomObjectsApi(self.api)

    @property
    def _core(self) -> Any:
        return client.CoreV1Api(self.api)

    def _plain(self, obj: Any) -> dict[str, Any]:
        out: dict[str, Any] = self.api.sanitize_for_serialization(obj)
        return out

    @classmethod
    def connect(cls, kubeconfig: str | None, context: str | None, namespace: str | None) -> Kube:
        """The kubeconfig kubectl would use (KUBECONFIG, ~/.kube/config), or in-cluster."""
        try:
            api = config.new_client_from_config(config_file=kubeconfig, context=context)
            contexts, active = config.list_kube_config_contexts(config_file=kubeconfig)
        except config.ConfigException:
            if kubeconfig or context:
                raise
            config.load_incluster_config()
            return cls(client.ApiClient(), namespace or _incluster_namespace())
        chosen = next((c for c in contexts if c["name"] == context), active) if context else active
        default = (chosen or {}).get("context", {}).get("namespace") or "default"
        return cls(api, namespace or default)

    # ---- our kinds ---------------------------------------------------------------------

    def _ns(self, kind: str) -> str | None:
        return None if kind in CLUSTER_SCOPED else self.namespace

    def get(self, kind: str, name: str) -> dict[str, Any] | None:
        api = self._custom
        try:
            if kind in CLUSTER_SCOPED:
                obj = api.get_cluster_custom_object(GROUP, VERSION, PLURALS[kind], name)
            else:
                obj = api.get_namespaced_custom_object(
                    GROUP, VERSION, self.namespace, PLURALS[kind], name
                )
        except ApiException as err:
            if err.status == 404:
                return None
            raise _explain(err, f"get {kind} {name}") from err
        return dict(obj)

    def need(self, kind: str, name: str) -> dict[str, Any]:
        obj = self.get(kind, name)
        if obj is None:
            where = "" if kind in CLUSTER_SCOPED else f" in namespace {self.namespace}"
            raise KubeError(f"{kind} {name} not found{where}")
        return obj

    def list_kind(self, kind: str, label_selector: str | None = None) -> list[dict[str, Any]]:
        api = self._custom
        selector = label_selector or ""
        try:
            if kind in CLUSTER_SCOPED:
                out = api.list_cluster_custom_object(
                    GROUP, VERSION, PLURALS[kind], label_selector=selector
                )
            else:
                out = api.list_namespaced_custom_object(
                    GROUP, VERSION, self.namespace, PLURALS[kind], label_selector=selector
                )
        except ApiException as err:
            raise _explain(err, f"list {PLURALS[kind]} in {self.namespace}") from err
        return [dict(item) for item in out.get("items", [])]

    def merge_patch(self, kind: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        """`kubectl patch --type merge`: the client sends application/merge-patch+json for a
        dict body."""
        api = self._custom
        try:
            out = api.patch_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PLURALS[kind], name, body, field_manager=MANAGER
            )
        except ApiException as err:
            raise _explain(err, f"patch {kind} {name}") from err
        return dict(out)

    def watch(self, kind: str, name: str, timeout_s: int = 60) -> Iterator[dict[str, Any]]:
        """The object now, then every change, until it is deleted or timeout_s passes quietly."""
        api = self._custom
        watcher: Any = watch.Watch()  # type: ignore[no-untyped-call]
        stream = watcher.stream(
            api.list_namespaced_custom_object, GROUP, VERSION, self.namespace, PLURALS[kind],
            field_selector=f"metadata.name={name}", timeout_seconds=timeout_s,
        )  # fmt: skip
        for event in stream:
            if event["type"] == "DELETED":
                return
            if event["type"] in ("ADDED", "MODIFIED"):
                yield dict(event["object"])

    # ---- core objects ------------------------------------------------------------------

    def pods(self, label_selector: str) -> list[dict[str, Any]]:
        core = self._core
        try:
            out = core.list_namespaced_pod(self.namespace, label_selector=label_selector)
        except ApiException as err:
            raise _explain(err, f"list pods in {self.namespace}") from err
        return [self._plain(p) for p in out.items]

    def pod(self, name: str) -> dict[str, Any] | None:
        core = self._core
        try:
            found = core.read_namespaced_pod(name, self.namespace)
        except ApiException as err:
            if err.status == 404:
                return None
            raise _explain(err, f"get pod {name}") from err
        return self._plain(found)

    def events(self, kind: str, name: str) -> list[dict[str, Any]]:
        core = self._core
        selector = f"involvedObject.kind={kind},involvedObject.name={name}"
        try:
            out = core.list_namespaced_event(self.namespace, field_selector=selector)
        except ApiException as err:
            raise _explain(err, f"list events in {self.namespace}") from err
        return [self._plain(e) for e in out.items]

    def log_lines(self, pod: str, container: str, *, follow: bool) -> Iterator[str]:
        """The container's log, line by line; with follow, until the container ends."""
        core = self._core
        try:
            resp: Any = core.read_namespaced_pod_log(
                pod, self.namespace, container=container, follow=follow, _preload_content=False
            )
        except ApiException as err:
            raise _explain(err, f"read the log of {pod}/{container}") from err
        try:
            pending = b""
            for chunk in resp.stream(4096):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    yield line.decode("utf-8", errors="replace")
            if pending:
                yield pending.decode("utf-8", errors="replace")
        finally:
            resp.release_conn()


def _incluster_namespace() -> str:
    path = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read().strip() or "default"
    except OSError:
        return "default"
