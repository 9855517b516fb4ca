"""An in-memory API server behind the operator's KubeApi, for unit tests of the reconcilers.

It keeps objects as dicts and logs every write in order (`writes`), so a test can assert what
a reconcile did and in which order: a rollback recorded before a Deployment goes, an Event
posted before the status that moves past it.

Like the API server (tests/integration/test_fake_kube.py runs the same checks against the
real one):
- create refuses a taken name (AlreadyExists), fills uid, resourceVersion, generation and
  creationTimestamp, makes a name from generateName, and drops `status` (except on Nodes,
  which register with theirs);
- get returns None for what does not exist; list answers in namespace/name order and
  understands label selectors (`k=v`, `k==v`, `k!=v`, `k`, `!k`) and field selectors
  (`path=value`, `path!=value` on dotted paths such as spec.nodeName, status.phase);
- merge patches follow RFC 7386 (null removes, maps merge, lists are replaced); a patch of a
  missing object is a 404, of status a NotFound; a change of spec moves generation; status
  changes only through patch_status;
- JSON patches follow RFC 6902 (test, add, replace, remove); a failed `test` is a 422;
- `name/scale` reads and sets spec.replicas as the scale subresource does.

What it still fakes:
- apply merges the manifest into the object (maps merge, lists are replaced) instead of
  tracking field managers: a field an earlier apply set and this one leaves out stays;
- delete removes at once: no finalizers, no graceful deletion, no garbage collection of
  owned children;
- no admission, no validation against the CRDs' schemas, no watch;
- Events are kept in `events`, not as objects `list` returns.
Errors to test a failure path are injected with `fail`.
"""

from __future__ import annotations

import copy
import itertools
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kubernetes.client.exceptions import ApiException

from perennial_operator.k8s.errors import AlreadyExists, Conflict, NotFound
from perennial_operator.k8s.kube import CLUSTER_SCOPED

Key = tuple[str, str | None, str]  # kind, namespace (None: cluster-scoped), name
STAMP = "2026-11-27T14:00:00Z"


@dataclass(frozen=True)
class Write:
    verb: str  # create, apply, patch, json_patch, patch_status, delete, event
    kind: str
    name: str
    detail: Any = None  # the patch, the status, or the Event's reason

    def __str__(self) -> str:
        return f"{self.verb} {self.kind}/{self.name}"


def _error(status: int, reason: str) -> ApiException:
    return ApiException(status=status, reason=reason)


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def _pointer(path: str) -> list[str]:
    return [p.replace("~1", "/").replace("~0", "~") for p in path.split("/")[1:]]


def json_patch(document: Any, ops: list[dict[str, Any]]) -> Any:
    """RFC 6902 test, add, replace, remove; ValueError when an op does not apply."""
    doc = copy.deepcopy(document)
    for op in ops:
        *parents, last = _pointer(op["path"])
        node = doc
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        if isinstance(node, list):
            index = len(node) if last == "-" else int(last)
            current = node[index] if index < len(node) else None
        else:
            index, current = last, node.get(last)  # type: ignore[assignment]
        if op["op"] == "test":
            if current != op["value"]:
                raise ValueError(f"test failed at {op['path']}")
        elif op["op"] == "remove":
            del node[index]
        elif op["op"] == "add" and isinstance(node, list):
            node.insert(index, copy.deepcopy(op["value"]))
        elif op["op"] in ("add", "replace"):
            node[index] = copy.deepcopy(op["value"])
        else:
            raise ValueError(f"unsupported op {op['op']}")
    return doc


def _labels_match(labels: dict[str, str], selector: str) -> bool:
    for term in filter(None, (t.strip() for t in selector.split(","))):
        if "!=" in term:
            key, value = term.split("!=", 1)
            if labels.get(key) == value:
                return False
        elif "=" in term:
            key, value = term.replace("==", "=").split("=", 1)
            if labels.get(key) != value:
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True


def _field(obj: dict[str, Any], path: str) -> str:
    node: Any = obj
    for part in path.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return "" if node is None else str(node)


def _fields_match(obj: dict[str, Any], selector: str) -> bool:
    for term in filter(None, (t.strip() for t in selector.split(","))):
        negate = "!=" in term
        path, value = term.split("!=" if negate else ("==" if "==" in term else "="), 1)
        if (_field(obj, path) == value) == negate:
            return False
    return True


class FakeKube:
    """KubeApi in memory. `served` maps an API group version to the resources it serves
    (for served_resources); the core and our own groups need no entry."""

    def __init__(self, *objects: dict[str, Any], served: dict[str, list[str]] | None = None):
        self.objects: dict[Key, dict[str, Any]] = {}
        self.writes: list[Write] = []
        self.reads: list[tuple[str, str]] = []  # (kind, name) of each get, in order
        self.events: list[dict[str, Any]] = []
        self.served = dict(served or {})
        self._versions = itertools.count(1)
        self._failures: list[tuple[str, str, str | None, Callable[[], Exception]]] = []
        for obj in objects:
            self.put(obj)

    # --- test helpers -------------------------------------------------------------------

    def put(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Store `obj` as it is (status included), filling what the API server would."""
        obj = copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {})
        meta.setdefault("uid", str(uuid.uuid4()))
        meta.setdefault("generation", 1)
        meta.setdefault("creationTimestamp", STAMP)
        meta["resourceVersion"] = str(next(self._versions))
        self.objects[self._key(obj["kind"], meta.get("namespace"), meta["name"])] = obj
        return copy.deepcopy(obj)

    def fail(
        self, verb: str, kind: str, error: Callable[[], Exception], name: str | None = None
    ) -> None:
        """Make every `verb` on `kind` (and `name`, if given) raise error()."""
        self._failures.append((verb, kind, name, error))

    def verbs(self, kind: str | None = None) -> list[str]:
        """The writes as "verb Kind/name", in order (of one kind, if given)."""
        return [str(w) for w in self.writes if kind is None or w.kind == kind]

    def reasons(self) -> list[str]:
        return [e["reason"] for e in self.events]

    # --- KubeApi ------------------------------------------------------------------------

    def get(
        self, api_version: str, kind: str, namespace: str | None, name: str
    ) -> dict[str, Any] | None:
        self._maybe_fail("get", kind, name)
        self.reads.append((kind, name))
        base, _, sub = name.partition("/")
        obj = self.objects.get(self._key(kind, namespace, base))
        if obj is None:
            return None
        if sub == "scale":
            replicas = int((obj.get("spec") or {}).get("replicas") or 0)
            spec = {"replicas": replicas} if replicas else {}  # omitempty, as the API server
            return {"kind": "Scale", "metadata": {"name": base}, "spec": spec}
        return copy.deepcopy(obj)

    def list(
        self,
        api_version: str,
        kind: str,
        namespace: str | None,
        label_selector: str = "",
        field_selector: str = "",
    ) -> list[dict[str, Any]]:
        self._maybe_fail("list", kind, None)
        found = [
            obj
            # (namespace, name); cluster-scoped objects have no namespace: sort them first
            for (k, ns, _), obj in sorted(
                self.objects.items(), key=lambda item: (item[0][1] or "", item[0][2])
            )
            if k == kind
            and (namespace is None or ns == namespace or kind in CLUSTER_SCOPED)
            and _labels_match(obj["metadata"].get("labels") or {}, label_selector)
            and _fields_match(obj, field_selector)
        ]
        return copy.deepcopy(found)

    def create(self, manifest: dict[str, Any]) -> dict[str, Any]:
        obj = copy.deepcopy(manifest)
        meta = obj["metadata"]
        if not meta.get("name"):
            meta["name"] = f"{meta['generateName']}{uuid.uuid4().hex[:5]}"
        self._maybe_fail("create", obj["kind"], meta["name"])
        if self._key(obj["kind"], meta.get("namespace"), meta["name"]) in self.objects:
            raise AlreadyExists(meta["name"])
        if obj["kind"] != "Node":
            obj.pop("status", None)
        for field in ("uid", "generation", "creationTimestamp"):
            meta.pop(field, None)
        self._log("create", obj["kind"], meta["name"])
        return self.put(obj)

    def apply(self, manifest: dict[str, Any], *, force: bool = True) -> dict[str, Any]:
        meta = manifest["metadata"]
        self._maybe_fail("apply", manifest["kind"], meta["name"])
        key = self._key(manifest["kind"], meta.get("namespace"), meta["name"])
        applied = {k: v for k, v in manifest.items() if k != "status"}
        self._log("apply", manifest["kind"], meta["name"], applied)
        old = self.objects.get(key)
        if old is None:
            return self.put(applied)
        return self._store(key, merge_patch(old, applied))

    def patch(
        self, api_version: str, kind: str, namespace: str | None, name: str, patch: dict[str, Any]
    ) -> dict[str, Any]:
        base, _, sub = name.partition("/")
        self._maybe_fail("patch", kind, base)
        key = self._key(kind, namespace, base)
        if key not in self.objects:
            raise _error(404, "NotFound")
        self._log("patch", kind, name, patch)
        if sub == "scale":
            patch = {"spec": {"replicas": (patch.get("spec") or {}).get("replicas")}}
        # The main resource ignores status: that is the status subresource's.
        patch = {k: v for k, v in patch.items() if k != "status"}
        return self._store(key, merge_patch(self.objects[key], patch))

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
        self._maybe_fail("json_patch", kind, name)
        key = self._key(kind, namespace, name)
        if key not in self.objects:
            raise _error(404, "NotFound")
        try:
            patched = json_patch(self.objects[key], ops)
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise _error(422, f"Invalid: {exc}") from exc
        self._log("json_patch", kind, name, ops)
        return self._store(key, patched)

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
        self._maybe_fail("patch_status", kind, name)
        key = self._key(kind, namespace, name)
        if key not in self.objects:
            raise NotFound(name)
        if resource_version not in (None, self.objects[key]["metadata"]["resourceVersion"]):
            raise Conflict(name)
        self._log("patch_status", kind, name, status)
        obj = copy.deepcopy(self.objects[key])
        obj["status"] = merge_patch(obj.get("status") or {}, status)
        obj["metadata"]["resourceVersion"] = str(next(self._versions))
        self.objects[key] = obj
        return copy.deepcopy(obj)

    def delete(self, api_version: str, kind: str, namespace: str | None, name: str) -> None:
        self._maybe_fail("delete", kind, name)
        if self.objects.pop(self._key(kind, namespace, name), None) is not None:
            self._log("delete", kind, name)

    def event(self, obj: dict[str, Any], type_: str, reason: str, message: str) -> None:
        self._maybe_fail("event", obj["kind"], obj["metadata"]["name"])
        self._log("event", obj["kind"], obj["metadata"]["name"], reason)
        self.events.append(
            {
                "kind": obj["kind"],
                "name": obj["metadata"]["name"],
                "type": type_,
                "reason": reason,
                "message": message[:1024],
            }
        )

    def evict(self, namespace: str, name: str) -> None:
        # No PodDisruptionBudgets in memory: the eviction deletes the pod (fail() injects a
        # 429). The real API server's answers: tests/reliability/test_computepool_drain.py.
        self._maybe_fail("evict", "Pod", name)
        if self.objects.pop(self._key("Pod", namespace, name), None) is not None:
            self._log("evict", "Pod", name)

    def served_resources(self, api_version: str) -> list[str] | None:
        return list(self.served[api_version]) if api_version in self.served else None

    # --- internals ----------------------------------------------------------------------

    @staticmethod
    def _key(kind: str, namespace: str | None, name: str) -> Key:
        return (kind, None if kind in CLUSTER_SCOPED else namespace, name)

    def _store(self, key: Key, obj: dict[str, Any]) -> dict[str, Any]:
        old = self.objects[key]
        meta = obj["metadata"]
        if obj.get("spec") != old.get("spec"):
            meta["generation"] = int(old["metadata"].get("generation", 1)) + 1
        meta["resourceVersion"] = str(next(self._versions))
        self.objects[key] = obj
        return copy.deepcopy(obj)

    def _log(self, verb: str, kind: str, name: str, detail: Any = None) -> None:
        self.writes.append(Write(verb, kind, name, copy.deepcopy(detail)))

    def _maybe_fail(self, verb: str, kind: str, name: str | None) -> None:
        for f_verb, f_kind, f_name, error in self._failures:
            if f_verb == verb and f_kind == kind and f_name in (None, name):
                raise error()
