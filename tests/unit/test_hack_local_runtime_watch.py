"""What the local runtime does with each pod event, short of running processes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from perennial_hack.local_runtime.runtime import ANNOTATIONS, OWNER_ANNOTATION, LocalRuntime
from perennial_hack.local_runtime.volumes import Layout

pytestmark = pytest.mark.unit


class FakeApi:
    def __init__(self) -> None:
        self.calls: list[tuple[str, ...]] = []
        self.patched: dict[str, dict[str, Any]] = {}

    def claim_pod(self, pod: dict[str, Any], key: str, owner: str) -> bool:
        current = (pod["metadata"].get("annotations") or {}).get(key)
        self.calls.append(("claim", pod["metadata"]["name"]))
        return current in (None, owner)

    def patch_pod_status(self, namespace: str, name: str, status: dict[str, Any]) -> bool:
        self.patched[name] = status
        return True

    def register_logs(self, namespace: str, name: str, uid: str, files: dict[str, str]) -> None:
        self.logs = files

    def delete_pod_now(self, namespace: str, name: str, uid: str | None = None) -> None:
        self.calls.append(("delete", name))

    def node_ip(self, name: str) -> str:
        return "10.0.0.1"


def pod(name: str, *, annotations: dict[str, str] | None = None, **extra: Any) -> dict[str, Any]:
    meta = {
        "name": name,
        "namespace": "ns",
        "uid": f"uid-{name}",
        "resourceVersion": "1",
        "annotations": dict(ANNOTATIONS) if annotations is None else annotations,
    }
    meta |= extra.pop("meta", {})
    return {"metadata": meta, "spec": {"nodeName": "n", "restartPolicy": "Never"}, **extra}


@pytest.fixture
def runtime(tmp_path: Path) -> tuple[LocalRuntime, FakeApi]:
    api = FakeApi()
    started: list[str] = []
    rt = LocalRuntime(api, Layout(tmp_path), tmp_path)  # type: ignore[arg-type]
    rt._start = lambda p: started.append(p["metadata"]["name"])  # type: ignore[method-assign]
    rt.started = started  # type: ignore[attr-defined]
    return rt, api


def test_only_pods_with_both_annotations_are_taken(runtime: tuple[LocalRuntime, FakeApi]):
    rt, api = runtime
    rt.handle("ADDED", pod("half", annotations={"perennial.dev/runtime": "local"}))
    rt.handle("ADDED", pod("kwok-only", annotations={"kwok.x-k8s.io/status": "custom"}))
    rt.handle("ADDED", pod("ours"))
    assert rt.started == ["ours"]  # type: ignore[attr-defined]
    assert api.calls == [("claim", "ours")]


def test_a_pod_another_runtime_claimed_is_left_to_it(runtime: tuple[LocalRuntime, FakeApi]):
    rt, api = runtime
    theirs = pod("theirs", annotations={**ANNOTATIONS, OWNER_ANNOTATION: "elsewhere:/x"})
    rt.handle("ADDED", theirs)
    deleting = pod(
        "theirs",
        annotations=theirs["metadata"]["annotations"],
        meta={"deletionTimestamp": "2026-01-01T00:00:00Z"},
    )
    rt.handle("MODIFIED", deleting)
    assert rt.started == []  # type: ignore[attr-defined]
    assert ("delete", "theirs") not in api.calls


def test_finished_pods_are_never_run_again_and_keep_their_address(
    runtime: tuple[LocalRuntime, FakeApi],
):
    rt, api = runtime
    first, second = rt.pool.address(0), rt.pool.address(1)
    rt.handle("ADDED", pod("done", status={"phase": "Succeeded", "podIP": first}))
    assert rt.started == [] and rt.pool.take("new") == second  # type: ignore[attr-defined]
    rt.handle("DELETED", pod("done"))
    assert rt.pool.take("newer") == first


def test_a_half_run_never_pod_from_an_earlier_runtime_is_failed(
    runtime: tuple[LocalRuntime, FakeApi],
):
    rt, api = runtime
    status = {
        "phase": "Running",
        "containerStatuses": [
            {"name": "train", "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}}}
        ],
    }
    rt.handle("ADDED", pod("orphan", status=status))
    assert rt.started == []  # type: ignore[attr-defined]
    assert api.patched["orphan"]["phase"] == "Failed"
    rt.handle("MODIFIED", pod("orphan", status=status))  # our own patch coming back
    assert rt.started == []  # type: ignore[attr-defined]


def test_a_deleted_pod_with_nothing_running_is_confirmed_at_once(
    runtime: tuple[LocalRuntime, FakeApi],
):
    rt, api = runtime
    rt.handle("MODIFIED", pod("gone", meta={"deletionTimestamp": "2026-01-01T00:00:00Z"}))
    assert api.calls == [("delete", "gone")]
