"""The one World the cluster tests work in: their namespace on the real control plane, the
operator running against it, and what a failed wait shows (statuses, Events, the operator's
log). What is particular to one kind (a pool's nodes, a training pod's end) lives beside that
kind's tests as functions of a World."""

from __future__ import annotations

import json
from collections.abc import Callable
from types import MappingProxyType
from typing import Any, TypeVar

from perennial_operator.api.group import API_VERSION
from perennial_operator.k8s.kube import CLUSTER_SCOPED, Kube
from support.operator_process import OperatorProcess
from support.poll import until

T = TypeVar("T")
OURS = ("TrainingJob", "ModelVersion", "InferenceService", "RetrainPolicy", "ComputePool")
# The group version tests read each kind in; ours are all perennial.dev/v1alpha1.
API_VERSIONS = MappingProxyType(
    {
        **dict.fromkeys(OURS, API_VERSION),
        "Pod": "v1",
        "ConfigMap": "v1",
        "Service": "v1",
        "Event": "v1",
        "Node": "v1",
        "PersistentVolume": "v1",
        "PersistentVolumeClaim": "v1",
        "Job": "batch/v1",
        "Deployment": "apps/v1",
        "HorizontalPodAutoscaler": "autoscaling/v2",
    }
)


def resource(kind: str, name: str, spec: dict[str, Any], **meta: Any) -> dict[str, Any]:
    """A manifest of one of our kinds."""
    metadata = {"name": name, **meta}
    return {"apiVersion": API_VERSION, "kind": kind, "metadata": metadata, "spec": spec}


class World:
    def __init__(
        self,
        kube: Kube,
        namespace: str,
        operator: OperatorProcess | None = None,
        notes: Callable[[], str] | None = None,
    ) -> None:
        self.kube, self.ns, self.op = kube, namespace, operator
        self.notes = notes  # more to show when a wait times out (another process's log)

    def create(self, manifest: dict[str, Any]) -> dict[str, Any]:
        """Create `manifest` in the namespace (cluster-scoped kinds as they are)."""
        if manifest["kind"] not in CLUSTER_SCOPED:
            manifest = {**manifest, "metadata": {**manifest["metadata"], "namespace": self.ns}}
        return self.kube.create(manifest)

    def get(self, kind: str, name: str) -> dict[str, Any]:
        """The object, or {} when it does not exist."""
        return self.kube.get(API_VERSIONS[kind], kind, self.ns, name) or {}

    def list(self, kind: str, selector: str = "") -> list[dict[str, Any]]:
        return self.kube.list(API_VERSIONS[kind], kind, self.ns, selector)

    def status(self, kind: str, name: str) -> dict[str, Any]:
        return self.get(kind, name).get("status") or {}

    def condition(self, kind: str, name: str, type_: str) -> dict[str, Any]:
        conditions = self.status(kind, name).get("conditions") or []
        return next((c for c in conditions if c["type"] == type_), {})

    def events(self, kind: str, name: str | None = None) -> list[tuple[str, str, str]]:
        """(type, reason, message) of the Events about `kind` objects, as they were posted:
        ours are never updated, so resourceVersion (etcd's revision) orders them."""
        namespace = "default" if kind in CLUSTER_SCOPED else self.ns
        found = sorted(
            self.kube.list("v1", "Event", namespace),
            key=lambda e: int(e["metadata"]["resourceVersion"]),
        )
        return [
            (e["type"], e["reason"], e["message"])
            for e in found
            if e["involvedObject"].get("kind") == kind
            and name in (None, e["involvedObject"].get("name"))
        ]

    def describe(self) -> str:
        """Statuses of our objects, the latest Events, the operator's log."""
        objects = {
            kind: {o["metadata"]["name"]: o.get("status") for o in self.list(kind)}
            for kind in OURS
            if kind not in CLUSTER_SCOPED
        }
        events = [
            f"{e['involvedObject'].get('kind')}/{e['involvedObject'].get('name')}: "
            f"{e['type']} {e['reason']}: {e['message'][:200]}"
            for e in sorted(
                self.kube.list("v1", "Event", self.ns),
                key=lambda e: int(e["metadata"]["resourceVersion"]),
            )[-15:]
        ]
        parts = [json.dumps(objects, indent=1)[-5000:], "--- events ---", *events]
        if self.op is not None:
            parts += ["--- operator log ---", self.op.log_tail(40)]
        if self.notes is not None:
            parts.append(self.notes())
        return "\n".join(parts)

    def wait(self, fn: Callable[[], T | None], message: str, timeout: float = 60.0) -> T:
        return until(fn, timeout=timeout, message=message, describe=self.describe)

    def wait_status(
        self, kind: str, name: str, message: str, timeout: float = 60.0, **want: Any
    ) -> dict[str, Any]:
        """The status once every field in `want` has that value."""

        def matches() -> dict[str, Any] | None:
            status = self.status(kind, name)
            return status if all(status.get(k) == v for k, v in want.items()) else None

        return self.wait(matches, message, timeout)
