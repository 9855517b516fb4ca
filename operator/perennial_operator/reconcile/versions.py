"""The high-water mark of each model's version numbers, kept in the namespace's ConfigMap
`perennial-model-versions` (data: model -> highest version ever registered). Deleting a
ModelVersion does not lower it, so `<model>-v<N>` always names the same bytes.

Raised after every registration and by the ModelVersion handler for every version it sees
(a registration cut short by a crash, or a version created by hand). Written with a JSON
patch that tests resourceVersion, so concurrent writers never lower it."""

from __future__ import annotations

from typing import Any

from kubernetes.client.exceptions import ApiException

from perennial_operator.api.group import FIELD_MANAGER, MANAGED_BY, MANAGED_BY_VALUE
from perennial_operator.api.names import VERSIONS_CONFIGMAP
from perennial_operator.k8s.errors import AlreadyExists
from perennial_operator.k8s.kube import KubeApi


def _mark(cm: dict[str, Any] | None, model: str) -> int:
    value = ((cm or {}).get("data") or {}).get(model, "0")
    return int(value) if str(value).isdigit() else 0


def high_water(kube: KubeApi, namespace: str, model: str) -> int:
    return _mark(kube.get("v1", "ConfigMap", namespace, VERSIONS_CONFIGMAP), model)


def raise_high_water(kube: KubeApi, namespace: str, model: str, version: int) -> None:
    """Make the mark at least `version`; never lowers it."""
    for _ in range(20):
        cm = kube.get("v1", "ConfigMap", namespace, VERSIONS_CONFIGMAP)
        if _mark(cm, model) >= version:
            return
        if cm is None:
            try:
                kube.create(
                    {
                        "apiVersion": "v1",
                        "kind": "ConfigMap",
                        "metadata": {
                            "name": VERSIONS_CONFIGMAP,
                            "namespace": namespace,
                            "labels": {MANAGED_BY: MANAGED_BY_VALUE},
                        },
                        "data": {model: str(version)},
                    }
                )
                return
            except AlreadyExists:
                continue
        ops: list[dict[str, Any]] = [
            {"op": "test", "path": "/metadata/resourceVersion",
             "value": cm["metadata"]["resourceVersion"]},
        ]  # fmt: skip
        if cm.get("data") is None:
            ops.append({"op": "add", "path": "/data", "value": {}})
        ops.append({"op": "add", "path": f"/data/{model}", "value": str(version)})
        try:
            kube.json_patch(
                "v1", "ConfigMap", namespace, VERSIONS_CONFIGMAP, ops, field_manager=FIELD_MANAGER
            )
            return
        except ApiException as exc:
            if exc.status not in (409, 422):  # 422: someone wrote in between; read again
                raise
    raise RuntimeError(f"could not raise the version mark of model {model} after 20 tries")
