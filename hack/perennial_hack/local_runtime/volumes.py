"""Volumes of a locally run pod: each becomes a folder under the runtime's state folder.

- configMap / secret: files written from the object's data (items honoured);
- downwardAPI: files written from the pod's own metadata (fieldRef items; the kubelet's
  rules: a missing label or annotation gives an empty file);
- persistentVolumeClaim: <state>/pvc/<namespace>/<claim>, shared by every pod of the namespace
  and kept across pods, so what training writes is there for serving;
- emptyDir: <state>/pods/<uid>/volumes/<name>, removed with the pod.

A container sees its mounts through `path_map`: mountPath -> local folder. Arguments and
environment values that start with a mountPath are rewritten with it (plan.py).
"""

from __future__ import annotations

import base64
import json
import posixpath
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# (kind, namespace, name) -> the object as a dict, or None when it does not exist.
ReadObject = Callable[[str, str, str], dict[str, Any] | None]


class VolumeError(Exception):
    """A volume cannot be provided locally; the message says which and why."""


@dataclass(frozen=True)
class Layout:
    """Folders of the runtime's state directory."""

    state: Path

    def pvc_root(self, namespace: str) -> Path:
        return self.state / "pvc" / namespace

    def pvc(self, namespace: str, claim: str) -> Path:
        return self.pvc_root(namespace) / claim

    def pod(self, uid: str) -> Path:
        return self.state / "pods" / uid


def config_files(
    data: Mapping[str, str] | None,
    binary: Mapping[str, str] | None,
    items: list[dict[str, Any]] | None,
    *,
    base64_data: bool = False,
) -> dict[str, bytes]:
    """Relative file path -> content, as the kubelet lays out a configMap/secret volume.

    Secrets carry base64 in `data`; ConfigMaps carry text in `data`, base64 in `binaryData`.
    """
    contents: dict[str, bytes] = {}
    for key, value in (data or {}).items():
        contents[key] = base64.b64decode(value) if base64_data else value.encode()
    for key, value in (binary or {}).items():
        contents[key] = base64.b64decode(value)
    if not items:
        return contents
    chosen: dict[str, bytes] = {}
    for item in items:
        if item["key"] not in contents:
            raise VolumeError(f"key {item['key']!r} is not in the object")
        chosen[item["path"]] = contents[item["key"]]
    return chosen


def _write_files(folder: Path, files: Mapping[str, bytes]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for relative, content in files.items():
        if ".." in Path(relative).parts or Path(relative).is_absolute():
            raise VolumeError(f"file path {relative!r} escapes its volume")
        target = folder / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)


def _object_volume(
    kind: str, source: dict[str, Any], namespace: str, read: ReadObject
) -> dict[str, bytes]:
    name = source.get("name") or source.get("secretName") or ""
    obj = read(kind, namespace, name)
    if obj is None:
        if source.get("optional"):
            return {}
        raise VolumeError(f"{kind} {namespace}/{name} does not exist")
    secret = kind == "Secret"
    return config_files(
        obj.get("data"), obj.get("binaryData"), source.get("items"), base64_data=secret
    )


def _metadata_map(values: Mapping[str, str]) -> str:
    # The kubelet's format for a whole labels/annotations map: key="value" per line, sorted,
    # the value quoted as Go's %q does (JSON's escapes agree for the text we write).
    return "\n".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in sorted(values.items()))


_ONE_KEY = re.compile(r"metadata\.(labels|annotations)\['([^']+)'\]")


def metadata_field(pod: dict[str, Any], path: str) -> str | None:
    """A pod's own metadata as the downward API gives it, in env or a volume: its name,
    namespace, uid, or one label or annotation by key (a missing key: ""); None for any
    other path."""
    meta = pod["metadata"]
    if path in ("metadata.name", "metadata.namespace", "metadata.uid"):
        value = meta.get(path.removeprefix("metadata."))
        return None if value is None else str(value)
    one = _ONE_KEY.fullmatch(path)
    return str((meta.get(one.group(1)) or {}).get(one.group(2), "")) if one else None


def downward_files(pod: dict[str, Any], source: dict[str, Any]) -> dict[str, bytes]:
    """Relative file path -> content of a downwardAPI volume, as the kubelet writes it.

    Only fieldRef items (the fields a volume may name: metadata.name, namespace, uid,
    labels, annotations and one label or annotation by key); resourceFieldRef is not
    reproduced here and raises VolumeError rather than leaving a file out."""
    meta = pod["metadata"]
    files: dict[str, bytes] = {}
    for item in source.get("items") or []:
        path = item["path"]
        ref = item.get("fieldRef")
        if ref is None:
            raise VolumeError(f"downwardAPI item {path!r}: only fieldRef is supported locally")
        field = ref["fieldPath"]
        if field in ("metadata.labels", "metadata.annotations"):
            value: str | None = _metadata_map(meta.get(field.removeprefix("metadata.")) or {})
        else:
            value = metadata_field(pod, field)
        if value is None:
            raise VolumeError(f"downwardAPI item {path!r}: {field!r} is not valid in a volume")
        files[path] = value.encode()
    return files


def _projected(source: dict[str, Any], pod: dict[str, Any], read: ReadObject) -> dict[str, bytes]:
    # configMap, secret and downwardAPI sources as their own volumes would be; a service
    # account token is left out (the API server's token, which no process run here is
    # given: the training and serving pods ask for none).
    namespace = pod["metadata"]["namespace"]
    files: dict[str, bytes] = {}
    for part in source.get("sources") or []:
        if "configMap" in part:
            files |= _object_volume("ConfigMap", part["configMap"], namespace, read)
        elif "secret" in part:
            files |= _object_volume("Secret", part["secret"], namespace, read)
        elif "downwardAPI" in part:
            files |= downward_files(pod, part["downwardAPI"])
    return files


def materialise(pod: dict[str, Any], layout: Layout, read: ReadObject) -> dict[str, Path]:
    """Volume name -> local folder, created and filled. Raises VolumeError."""
    namespace = pod["metadata"]["namespace"]
    pod_dir = layout.pod(pod["metadata"]["uid"])
    folders: dict[str, Path] = {}
    for volume in pod["spec"].get("volumes") or []:
        name = volume["name"]
        if "persistentVolumeClaim" in volume:
            folder = layout.pvc(namespace, volume["persistentVolumeClaim"]["claimName"])
            folder.mkdir(parents=True, exist_ok=True)
        elif "emptyDir" in volume:
            folder = pod_dir / "volumes" / name
            folder.mkdir(parents=True, exist_ok=True)
        elif "downwardAPI" in volume:
            folder = pod_dir / "volumes" / name
            _write_files(folder, downward_files(pod, volume["downwardAPI"]))
        elif "configMap" in volume:
            folder = pod_dir / "volumes" / name
            _write_files(folder, _object_volume("ConfigMap", volume["configMap"], namespace, read))
        elif "secret" in volume:
            folder = pod_dir / "volumes" / name
            _write_files(folder, _object_volume("Secret", volume["secret"], namespace, read))
        elif "projected" in volume:
            folder = pod_dir / "volumes" / name
            _write_files(folder, _projected(volume["projected"], pod, read))
        else:
            kinds = sorted(k for k in volume if k != "name")
            raise VolumeError(f"volume {name!r}: {', '.join(kinds)} is not supported locally")
        folders[name] = folder
    return folders


def path_map(
    pod_spec: dict[str, Any], container: dict[str, Any], folders: Mapping[str, Path]
) -> dict[str, str]:
    """mountPath -> local folder for one container's mounts.

    When every claim is mounted at <P>/<claim> (as the operator does), <P> itself maps to the
    local claim root too, so a PERENNIAL_PVC_ROOT=<P> or --pvc-root <P> still resolves.
    """
    claims = {
        v["name"]: v["persistentVolumeClaim"]["claimName"]
        for v in pod_spec.get("volumes") or []
        if "persistentVolumeClaim" in v
    }
    paths: dict[str, str] = {}
    parents: set[tuple[str, str]] = set()
    for mount in container.get("volumeMounts") or []:
        if mount["name"] not in folders:
            raise VolumeError(f"mount {mount['mountPath']}: no volume {mount['name']!r}")
        local = folders[mount["name"]] / mount.get("subPath", "")
        mount_path = posixpath.normpath(mount["mountPath"])
        paths[mount_path] = str(local)
        claim = claims.get(mount["name"])
        if claim and posixpath.basename(mount_path) == claim and not mount.get("subPath"):
            parents.add((posixpath.dirname(mount_path), str(local.parent)))
    if len(parents) == 1:
        parent, local_parent = parents.pop()
        paths.setdefault(parent, local_parent)
    return paths


def make_sub_paths(pod_spec: dict[str, Any], folders: Mapping[str, Path]) -> None:
    """Create each mount's missing subPath folder in its volume, as the kubelet does before
    a container starts (the API server has already refused absolute paths and `..`)."""
    containers = (pod_spec.get("initContainers") or []) + (pod_spec.get("containers") or [])
    for container in containers:
        for mount in container.get("volumeMounts") or []:
            if mount.get("subPath") and mount["name"] in folders:
                (folders[mount["name"]] / mount["subPath"]).mkdir(parents=True, exist_ok=True)


def rewrite(value: str, paths: Mapping[str, str]) -> str:
    """`value` with a leading mountPath replaced by its local folder (longest mount first);
    `--flag=/mount/...` is rewritten after the `=`. Anything else is returned unchanged."""
    if value.startswith("-") and "=" in value:
        flag, _, rest = value.partition("=")
        return f"{flag}={rewrite(rest, paths)}"
    for mount in sorted(paths, key=len, reverse=True):
        if mount == "/":
            continue  # a root mount would swallow every absolute path
        if value == mount or value.startswith(mount + "/"):
            return paths[mount] + value[len(mount) :]
    return value


def env_objects(pod: dict[str, Any]) -> set[tuple[str, str, bool]]:
    """(kind, name, optional) of every ConfigMap and Secret the containers' env reads."""
    found: set[tuple[str, str, bool]] = set()
    for c in (pod["spec"].get("initContainers") or []) + (pod["spec"].get("containers") or []):
        for source in c.get("envFrom") or []:
            for key, kind in (("secretRef", "Secret"), ("configMapRef", "ConfigMap")):
                if key in source:
                    ref = source[key]
                    found.add((kind, ref["name"], bool(ref.get("optional"))))
        for item in c.get("env") or []:
            value_from = item.get("valueFrom") or {}
            for key, kind in (("secretKeyRef", "Secret"), ("configMapKeyRef", "ConfigMap")):
                if key in value_from:
                    ref = value_from[key]
                    found.add((kind, ref["name"], bool(ref.get("optional"))))
    return found


def read_env_objects(
    pod: dict[str, Any], read: ReadObject
) -> dict[tuple[str, str], dict[str, str]]:
    """The ConfigMaps and Secrets the pod's env names, decoded. A missing required one
    raises VolumeError (the kubelet's CreateContainerConfigError: retried until it exists)."""
    objects: dict[tuple[str, str], dict[str, str]] = {}
    for kind, name, optional in sorted(env_objects(pod)):
        obj = read(kind, pod["metadata"]["namespace"], name)
        if obj is None:
            if optional:
                continue
            raise VolumeError(f"{kind} {pod['metadata']['namespace']}/{name} does not exist")
        files = config_files(
            obj.get("data"), obj.get("binaryData"), None, base64_data=kind == "Secret"
        )
        objects[(kind, name)] = {k: v.decode(errors="replace") for k, v in files.items()}
    return objects
