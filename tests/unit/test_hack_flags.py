"""Control-plane command lines, kwok stages and certificates: pure decisions."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from perennial_hack.cluster import flags, pki
from perennial_hack.cluster.control_plane import (
    COMPONENTS,
    STAGES_FILE,
    component_argv,
    node_is_ready,
)

pytestmark = pytest.mark.unit

PORTS = flags.Ports(2379, 2380, 6443, 10257, 10259, 10247)
LAYOUT = flags.Layout(Path("/run/x"))


def arg(argv: list[str], name: str) -> str:
    (value,) = [a.split("=", 1)[1] for a in argv if a.startswith(f"--{name}=")]
    return value


def test_everything_listens_on_loopback_only():
    assert arg(flags.apiserver_args(PORTS, LAYOUT), "bind-address") == "127.0.0.1"
    assert arg(flags.etcd_args(PORTS, LAYOUT), "listen-client-urls") == "http://127.0.0.1:2379"
    for builder in (flags.controller_manager_args, flags.scheduler_args):
        assert arg(builder(PORTS, LAYOUT), "bind-address") == "127.0.0.1"
    assert arg(flags.kwok_args(PORTS, LAYOUT), "server-address") == "127.0.0.1:10247"


def test_apiserver_has_rbac_pod_security_and_service_account_signing():
    argv = flags.apiserver_args(PORTS, LAYOUT)
    assert arg(argv, "authorization-mode") == "Node,RBAC"
    assert "PodSecurity" in arg(argv, "enable-admission-plugins").split(",")
    assert arg(argv, "service-account-signing-key-file") == "/run/x/pki/sa.key"
    assert arg(argv, "etcd-servers") == "http://127.0.0.1:2379"


def test_controller_manager_runs_all_default_controllers():
    argv = flags.controller_manager_args(PORTS, LAYOUT)
    assert arg(argv, "controllers").split(",")[0] == "*"
    assert arg(argv, "leader-elect") == "false"


def test_kwok_manages_only_annotated_nodes_with_our_stages():
    argv = flags.kwok_args(PORTS, LAYOUT)
    assert arg(argv, "manage-all-nodes") == "false"
    assert arg(argv, "manage-nodes-with-annotation-selector") == "kwok.x-k8s.io/node=fake"
    assert arg(argv, "config") == "/run/x/kwok.yaml"


def test_every_component_has_a_binary_path():
    for name in COMPONENTS:
        assert component_argv(name, Path("/bin"), PORTS, LAYOUT)[0] == f"/bin/{name}"


def _stages() -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in yaml.safe_load_all(STAGES_FILE.read_text())}


def _keys(stage: dict) -> dict[str, tuple[str, list[str]]]:
    return {
        e["key"]: (e["operator"], e.get("values", []))
        for e in stage["spec"]["selector"]["matchExpressions"]
    }


def test_job_completion_excludes_pods_asked_to_fail():
    simulate = '.metadata.annotations["perennial.dev/simulate"]'
    assert _keys(_stages()["pod-complete"])[simulate] == ("NotIn", ["fail"])
    assert _keys(_stages()["pod-fail-on-request"])[simulate] == ("In", ["fail"])


def test_custom_status_pods_are_left_alone_except_for_deletion():
    custom = '.metadata.annotations["kwok.x-k8s.io/status"]'
    stages = _stages()
    for name in ("pod-ready", "pod-complete", "pod-fail-on-request"):
        assert _keys(stages[name])[custom] == ("NotIn", ["custom"]), name
    assert custom not in _keys(stages["pod-delete"])


def test_node_is_ready():
    ready = {"status": {"conditions": [{"type": "Ready", "status": "True"}]}}
    assert node_is_ready(ready)
    assert not node_is_ready({"status": {}})


def test_apiserver_certificate_covers_loopback_and_the_service_ip():
    (server,) = [s for s in pki.cert_specs("10.96.0.1") if s.is_server]
    assert {"127.0.0.1", "10.96.0.1"} <= set(server.ip_addresses)
    assert "extendedKeyUsage=serverAuth" in pki.extensions(server)
    admin = next(s for s in pki.cert_specs("10.96.0.1") if s.name == "admin")
    assert pki.subject(admin) == "/CN=perennial-admin/O=system:masters"
    assert "extendedKeyUsage=clientAuth" in pki.extensions(admin)


def test_kwok_is_the_nodes_kubelet_endpoint_for_logs():
    argv = flags.kwok_args(PORTS, LAYOUT)
    assert arg(argv, "node-ip") == "127.0.0.1"
    assert arg(argv, "node-port") == "10247" == arg(argv, "server-address").rpartition(":")[2]
    assert (arg(argv, "tls-cert-file"), arg(argv, "tls-private-key-file")) == LAYOUT.cert("kwok")
    assert arg(argv, "enable-crds") == "Logs"
