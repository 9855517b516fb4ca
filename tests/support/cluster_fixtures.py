"""Fixtures of the real control plane for integration and e2e tests: `cluster`, `namespace`,
`core`, and the operator's: `kube`, `operator` (started as `operator_options` says), `world`.

Registered for the whole tree by tests/conftest.py, so integration and e2e tests in one
session share one cluster; unit tests never ask for it, so it never starts for them.

One cluster per test session: etcd, kube-apiserver, kube-controller-manager, kube-scheduler
and kwok, started from the binaries `make k8s-build` puts in the cache, with every crds/*.yaml
installed. Set PERENNIAL_TEST_KUBECONFIG to run against an existing cluster instead; the
ambient KUBECONFIG is never used, so no test touches a real cluster unasked.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from perennial_hack.cluster import nodes
from perennial_hack.cluster.control_plane import Cluster
from perennial_operator.config import DEFAULT_ARTIFACT_PVC
from perennial_operator.k8s.kube import Kube
from support import operator_rbac, storage
from support.operator_process import OperatorOptions, OperatorProcess
from support.poll import until
from support.world import World

REPO = Path(__file__).resolve().parents[2]
CRD_DIR = REPO / "crds"
OPT_IN = "PERENNIAL_TEST_KUBECONFIG"
RESTRICTED = {
    f"pod-security.kubernetes.io/{mode}": "restricted" for mode in ("enforce", "warn", "audit")
}


@dataclass
class TestCluster:
    """What tests get: a kubeconfig, clients, kubectl, and fake nodes on demand."""

    kubeconfig: Path
    kubectl_bin: str
    local: Cluster | None = None  # the session's own control plane (None: an existing one)
    _nodes: list[str] = field(default_factory=list)

    __test__ = False  # not a test class, despite the name

    def api_client(self) -> client.ApiClient:
        return config.new_client_from_config(config_file=str(self.kubeconfig))

    def kubectl(
        self, *args: str, check: bool = True, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        argv = [self.kubectl_bin, f"--kubeconfig={self.kubeconfig}", *args]
        result = subprocess.run(argv, capture_output=True, text=True, input=stdin, timeout=120)
        if check and result.returncode != 0:
            raise AssertionError(f"{' '.join(argv[2:])} failed: {result.stderr}")
        return result

    def create_node(
        self,
        name: str,
        *,
        cpu: str | int = "8",
        memory: str = "32Gi",
        gpu: int = 0,
        labels: Mapping[str, str] | None = None,
        taints: Sequence[Mapping[str, str]] = (),
        pods: int = 110,
    ) -> Any:
        """A kwok-managed Node; deleted when the session ends (or by delete_node)."""
        with self.api_client() as api:
            node = nodes.create_node(
                client.CoreV1Api(api),
                name,
                cpu=cpu,
                memory=memory,
                gpu=gpu,
                labels=labels,
                taints=taints,
                pods=pods,
            )
        self._nodes.append(name)
        return node

    def delete_node(self, name: str) -> None:
        with self.api_client() as api:
            try:
                client.CoreV1Api(api).delete_node(name)
            except ApiException as err:
                if err.status != 404:
                    raise
        if name in self._nodes:
            self._nodes.remove(name)

    def delete_created_nodes(self) -> None:
        for name in list(self._nodes):
            self.delete_node(name)


def crd_names(crd_dir: Path = CRD_DIR) -> list[str]:
    names = []
    for path in sorted(crd_dir.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("kind") == "CustomResourceDefinition":
                names.append(doc["metadata"]["name"])
    return names


def install_crds(tc: TestCluster, crd_dir: Path = CRD_DIR) -> None:
    files = sorted(crd_dir.glob("*.yaml"))
    if not files:
        return
    args = [a for f in files for a in ("-f", str(f))]
    tc.kubectl("apply", "--server-side", "--force-conflicts", *args)
    for name in crd_names(crd_dir):
        tc.kubectl("wait", "--for=condition=Established", f"crd/{name}", "--timeout=60s")


def _kubectl_for(kubeconfig_bin_dir: Path | None) -> str:
    if kubeconfig_bin_dir and (kubeconfig_bin_dir / "kubectl").exists():
        return str(kubeconfig_bin_dir / "kubectl")
    found = shutil.which("kubectl")
    if not found:
        raise pytest.UsageError("no kubectl: run `make k8s-build`")
    return found


@pytest.fixture(scope="session")
def cluster(request: pytest.FixtureRequest) -> Iterator[TestCluster]:
    previous = os.environ.get("KUBECONFIG")
    existing = os.environ.get(OPT_IN)
    local: Cluster | None = None
    if existing:
        tc = TestCluster(Path(existing), _kubectl_for(Cluster().bin_dir))
    else:
        # A name per session: parallel sessions on one machine get separate clusters.
        local = Cluster(f"pytest-{os.getpid()}", tie_to_parent=True)
        _prune_stale_runs(local.run_dir.parent)
        local.start()
        tc = TestCluster(local.kubeconfig, str(local.bin_dir / "kubectl"), local)
    # Anything that loads the default config (an operator started by a test) lands here.
    os.environ["KUBECONFIG"] = str(tc.kubeconfig)
    try:
        install_crds(tc)
        yield tc
    finally:
        _teardown(tc, local, previous, failed=bool(request.session.testsfailed))


def _teardown(tc: TestCluster, local: Cluster | None, previous: str | None, failed: bool) -> None:
    try:
        if local is None:  # an existing cluster outlives us: take our nodes back
            tc.delete_created_nodes()
    finally:
        if previous is None:
            os.environ.pop("KUBECONFIG", None)
        else:
            os.environ["KUBECONFIG"] = previous
        if local is not None:
            local.stop(quiet=True)
            shutil.rmtree(local.layout.etcd_data, ignore_errors=True)  # ~60 MB of WAL
            if failed:
                print(f"\ncontrol-plane logs kept in {local.layout.logs}")
            else:
                shutil.rmtree(local.run_dir, ignore_errors=True)


def _prune_stale_runs(run_root: Path, keep_s: float = 86400.0) -> None:
    """Run folders of dead pytest sessions: drop their etcd data; after a day, the logs too."""
    for run in run_root.glob("pytest-*"):
        pid = run.name.removeprefix("pytest-")
        if not pid.isdigit() or Path(f"/proc/{pid}").exists():
            continue
        shutil.rmtree(run / "etcd", ignore_errors=True)
        if time.time() - run.stat().st_mtime > keep_s:
            shutil.rmtree(run, ignore_errors=True)


def _namespace_name(test_name: str) -> str:
    stem = re.sub(r"[^a-z0-9-]+", "-", test_name.lower()).strip("-")[:40].strip("-")
    return f"{stem}-{uuid.uuid4().hex[:6]}"


@pytest.fixture
def core(cluster: TestCluster) -> Iterator[client.CoreV1Api]:
    with cluster.api_client() as api:
        yield client.CoreV1Api(api)


def wait_for_default_serviceaccount(core: client.CoreV1Api, name: str) -> None:
    """A pod is refused until its namespace's default ServiceAccount exists."""

    def default_sa() -> bool:
        try:
            core.read_namespaced_service_account("default", name)
        except ApiException as err:
            if err.status == 404:
                return False
            raise
        return True

    until(default_sa, timeout=30, message=f"ServiceAccount default in {name}")


@pytest.fixture
def namespace(
    cluster: TestCluster, core: client.CoreV1Api, request: pytest.FixtureRequest
) -> Iterator[str]:
    """A fresh namespace with Pod Security `restricted` enforced, deleted afterwards."""
    name = _namespace_name(request.node.name)
    body = {"metadata": {"name": name, "labels": {**RESTRICTED, "perennial.dev/test": "true"}}}
    core.create_namespace(body)
    wait_for_default_serviceaccount(core, name)
    try:
        yield name
    finally:
        core.delete_namespace(name, propagation_policy="Background")


@pytest.fixture
def kube(cluster: TestCluster) -> Iterator[Kube]:
    """The operator's own API client (k8s/kube.py) on the session's cluster."""
    with cluster.api_client() as api_client:
        yield Kube(api_client)


@pytest.fixture
def operator_options() -> OperatorOptions:
    """Overridden by a test module (or conftest) that needs the operator started otherwise."""
    return OperatorOptions()


@pytest.fixture(scope="session")
def operator_kubeconfig(cluster: TestCluster, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The operator's ServiceAccount, with the RBAC of manifests/ (a namespaced install)."""
    out = tmp_path_factory.mktemp("operator-sa") / "kubeconfig"
    return operator_rbac.install(cluster.kubectl, cluster.kubeconfig, out)


@pytest.fixture
def operator(
    cluster: TestCluster,
    namespace: str,
    tmp_path: Path,
    kube: Kube,
    operator_options: OperatorOptions,
    operator_kubeconfig: Path,
) -> Iterator[OperatorProcess]:
    """The operator as a real process, watching the test's namespace, under its own
    ServiceAccount and no more RBAC than manifests/ grant (support/operator_rbac.py)."""
    options = operator_options
    if options.artifact_claim:
        storage.bound_claim(kube, namespace, DEFAULT_ARTIFACT_PVC, str(tmp_path / "pv"))
    operator_rbac.bind(cluster.kubectl, namespace)
    proc = OperatorProcess(
        str(operator_kubeconfig),
        namespace,
        tmp_path / "operator.log",
        pod_annotations=dict(options.pod_annotations),
        extra_env=dict(options.env),
    ).start()
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture
def world_notes() -> Callable[[], str] | None:
    """More for World.describe (overridden where another process's log matters)."""
    return None


@pytest.fixture
def world(
    kube: Kube,
    namespace: str,
    operator: OperatorProcess,
    world_notes: Callable[[], str] | None,
) -> World:
    return World(kube, namespace, operator, world_notes)
