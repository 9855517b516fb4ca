"""Perennial Studio against the real control plane: its watches (including a resourceVersion
the server no longer has), its actions as the API server sees them, and its RBAC: the
read-only ClusterRole from manifests/studio/ is all it needs to read, refuses every write,
and the studio-actions role allows exactly the actions."""

from __future__ import annotations

import copy
import re
import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import yaml

from perennial_operator.api.group import API_VERSION
from perennial_operator.k8s.kube import Kube as OperatorKube
from perennial_studio.kube import Kube, load_configuration
from perennial_studio.reflector import Gone, Reflector
from perennial_studio.sources import WATCHED
from perennial_studio.store import Store
from studio_support.process import StudioProcess
from studio_support.serve import fetch
from support.poll import until

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
RBAC = "/apis/rbac.authorization.k8s.io/v1"


def modelversion(name: str, version: int, stage: str) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "ModelVersion",
        "metadata": {"name": name},
        "spec": {
            "model": "churn",
            "version": version,
            "stage": stage,
            "artifact": {"uri": f"pvc://a/{name}", "sha256": "a" * 64},
            "metrics": {"roc_auc": 0.9},
        },
    }


def create(kube: OperatorKube, ns: str, manifest: dict[str, Any]) -> dict[str, Any]:
    return kube.create({**manifest, "metadata": {**manifest["metadata"], "namespace": ns}})


def test_the_store_follows_creates_updates_and_deletes(
    cluster: Any, namespace: str, kube: OperatorKube
) -> None:
    studio_kube = Kube(load_configuration(str(cluster.kubeconfig)))
    store, stop = Store(), threading.Event()
    watched = next(w for w in WATCHED if w.resource.kind == "ModelVersion")
    reflector = Reflector(studio_kube, store, watched, namespace, stop)
    thread = reflector.start()
    try:
        create(kube, namespace, modelversion("churn-v1", 1, "None"))
        until(
            lambda: store.snapshot().get("ModelVersion", namespace, "churn-v1"),
            timeout=20,
            message="churn-v1 in the store",
        )
        kube.patch(
            API_VERSION, "ModelVersion", namespace, "churn-v1", {"spec": {"stage": "Staging"}}
        )
        until(
            lambda: (
                (store.snapshot().get("ModelVersion", namespace, "churn-v1") or {})
                .get("spec", {})
                .get("stage")
                == "Staging"
            ),
            timeout=20,
            message="the stage change",
        )
        kube.delete(API_VERSION, "ModelVersion", namespace, "churn-v1")
        until(
            lambda: store.snapshot().get("ModelVersion", namespace, "churn-v1") is None,
            timeout=20,
            message="the deletion",
        )
    finally:
        stop.set()  # the watch thread is a daemon: it ends at its next event or timeout
        studio_kube.close()
        del thread


def test_a_resource_version_the_server_no_longer_has_is_gone(
    cluster: Any, namespace: str, kube: OperatorKube
) -> None:
    """The API server answers a watch from a version older than its window with 410 (as an
    ERROR event): the reflector's signal to list again, which then starts a watch that works."""
    studio_kube = Kube(load_configuration(str(cluster.kubeconfig)))
    store, stop = Store(), threading.Event()
    watched = next(w for w in WATCHED if w.resource.kind == "ModelVersion")
    reflector = Reflector(studio_kube, store, watched, namespace, stop)
    try:
        create(kube, namespace, modelversion("churn-v1", 1, "None"))
        with pytest.raises(Gone):
            reflector.watch("1")
        version = reflector.list()
        assert store.snapshot().get("ModelVersion", namespace, "churn-v1") is not None

        def follow() -> None:
            try:
                reflector.watch(version)
            except Exception:  # the connection closes under it when the test ends
                if not stop.is_set():
                    raise

        threading.Thread(target=follow, daemon=True).start()
        create(kube, namespace, modelversion("churn-v2", 2, "None"))
        until(
            lambda: store.snapshot().get("ModelVersion", namespace, "churn-v2"),
            timeout=20,
            message="churn-v2 through the new watch",
        )
    finally:
        stop.set()
        studio_kube.close()


def test_actions_write_what_kubectl_would_and_record_an_event(
    cluster: Any, namespace: str, kube: OperatorKube, tmp_path: Path
) -> None:
    ns = namespace
    for v, stage in ((1, "Archived"), (2, "Production"), (3, "None")):
        create(kube, ns, modelversion(f"churn-v{v}", v, stage))
    create(
        kube,
        ns,
        {
            "apiVersion": API_VERSION,
            "kind": "InferenceService",
            "metadata": {"name": "churn"},
            "spec": {"model": {"name": "churn", "stage": "Production"}},
        },
    )
    kube.patch_status(
        API_VERSION,
        "InferenceService",
        ns,
        "churn",
        {"currentModelVersion": "churn-v2", "phase": "Ready"},
    )
    studio = StudioProcess(
        str(cluster.kubeconfig), tmp_path / "studio.log", "-n", ns, "--allow-actions"
    ).start()
    try:
        page = until(
            lambda: (
                (s := studio.get(f"/ns/{ns}/inferenceservices/churn"))[0] == 200
                and "Roll back" in s[1]
                and s[1]
            ),
            timeout=20,
            message="the service page with its rollback",
        )
        token = re.search(r'name="token" value="([^"]+)"', page)
        assert token, page
        # Without stage history, the newest older Archived version is the one to go back to.
        assert "set churn-v1 back to Production" in page
        form = {
            "token": token.group(1),
            "namespace": ns,
            "name": "churn",
            "back": f"/ns/{ns}/inferenceservices/churn",
        }
        status, headers, _ = fetch(studio.url + "/actions/rollback", data=urlencode(form).encode())
        assert status == 303 and "notice=done" in headers["location"], headers
        assert (
            kube.get(API_VERSION, "ModelVersion", ns, "churn-v1")["spec"]["stage"] == "Production"
        )
        # Production stays unique through the operator (not running here): the Studio
        # itself wrote nothing else.
        assert (
            kube.get(API_VERSION, "ModelVersion", ns, "churn-v2")["spec"]["stage"] == "Production"
        )
        events = kube.list("v1", "Event", ns)
        mine = {
            (e["involvedObject"]["name"], e["reason"])
            for e in events
            if e.get("source", {}).get("component") == "perennial-studio"
        }
        assert mine == {("churn-v1", "StageSet"), ("churn", "RollbackRequested")}

        form = {"token": token.group(1), "namespace": ns, "name": "churn-v3", "stage": "Banana"}
        status, headers, _ = fetch(studio.url + "/actions/promote", data=urlencode(form).encode())
        assert (
            status == 303 and "failure=" in headers["location"] and "Banana" in headers["location"]
        )
    finally:
        studio.stop()


def test_the_studio_pod_is_admitted_by_pod_security_restricted(
    cluster: Any, namespace: str, core: Any
) -> None:
    docs = list(yaml.safe_load_all((REPO / "manifests/studio/deployment.yaml").read_text()))
    template = copy.deepcopy(docs[0]["spec"]["template"])
    template["spec"].pop("serviceAccountName")
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "studio-psa"},
        "spec": template["spec"],
    }
    core.create_namespaced_pod(namespace, pod, dry_run="All")  # raises 403 if refused


def _token_kubeconfig(cluster: Any, kube: OperatorKube, ns: str, sa: str, path: Path) -> str:
    request = kube._call(
        "POST",
        f"/api/v1/namespaces/{ns}/serviceaccounts/{sa}/token",
        body={
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {"expirationSeconds": 3600},
        },
    )
    admin = yaml.safe_load(Path(cluster.kubeconfig).read_text())
    server = admin["clusters"][0]["cluster"]
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "sa",
        "clusters": [{"name": "c", "cluster": server}],
        "users": [{"name": sa, "user": {"token": request["status"]["token"]}}],
        "contexts": [{"name": "sa", "context": {"cluster": "c", "user": sa}}],
    }
    path.write_text(yaml.safe_dump(config))
    return str(path)


def _apply_roles(kube: OperatorKube, ns: str, suffix: str, files: list[str]) -> list[str]:
    """The manifests' ClusterRoles and bindings under unique names, bound to a test SA."""
    created = []
    for file in files:
        for doc in yaml.safe_load_all((REPO / file).read_text()):
            if doc["kind"] not in ("ClusterRole", "ClusterRoleBinding"):
                continue
            doc["metadata"]["name"] += suffix
            if doc["kind"] == "ClusterRoleBinding":
                doc["roleRef"]["name"] += suffix
                doc["subjects"] = [{"kind": "ServiceAccount", "name": "studio", "namespace": ns}]
            kube._call("POST", f"{RBAC}/{doc['kind'].lower()}s", body=doc)
            created.append(f"{doc['kind']}/{doc['metadata']['name']}")
    return created


def test_read_only_rbac_reads_everything_and_writes_nothing(
    cluster: Any, namespace: str, kube: OperatorKube, core: Any, tmp_path: Path
) -> None:
    ns, suffix = namespace, f"-{namespace[-6:]}"
    core.create_namespaced_service_account(ns, {"metadata": {"name": "studio"}})
    created = _apply_roles(kube, ns, suffix, ["manifests/studio/rbac.yaml"])
    create(kube, ns, modelversion("churn-v1", 1, "None"))
    kubeconfig = _token_kubeconfig(cluster, kube, ns, "studio", tmp_path / "sa.kubeconfig")
    studio = StudioProcess(kubeconfig, tmp_path / "studio.log", "--allow-actions").start()
    try:
        _, body = studio.get("/readyz")
        assert '"errors":{}' in body.replace(" ", ""), body  # every watch allowed
        page = until(
            lambda: (s := studio.get(f"/ns/{ns}/models/churn"))[0] == 200 and s[1],
            timeout=20,
            message="the model page",
        )
        token = re.search(r'name="token" value="([^"]+)"', page)
        assert token
        form = {"token": token.group(1), "namespace": ns, "name": "churn-v1", "stage": "Staging"}
        _, headers, _ = fetch(studio.url + "/actions/promote", data=urlencode(form).encode())
        assert "refused" in headers["location"] and "403" in headers["location"], headers
        assert kube.get(API_VERSION, "ModelVersion", ns, "churn-v1")["spec"]["stage"] == "None"

        created += _apply_roles(kube, ns, suffix, ["manifests/studio-actions/rbac-actions.yaml"])
        until(
            lambda: (
                fetch(studio.url + "/actions/promote", data=urlencode(form).encode())[1]
                .get("location", "")
                .find("notice=done")
                >= 0
            ),
            timeout=20,
            message="the promotion once the actions role is bound",
        )
        assert kube.get(API_VERSION, "ModelVersion", ns, "churn-v1")["spec"]["stage"] == "Staging"
    finally:
        studio.stop()
        for ref in created:
            kind, name = ref.split("/")
            kube._call("DELETE", f"{RBAC}/{kind.lower()}s/{name}")
