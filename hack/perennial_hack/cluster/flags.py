"""Command lines of the control-plane processes: pure functions of ports and paths.

Checked against each binary's --help for the versions in hack/versions.env.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

SERVICE_CIDR = "10.96.0.0/16"
SERVICE_IP = "10.96.0.1"  # first address of SERVICE_CIDR: the `kubernetes` Service
POD_CIDR = "10.244.0.1/16"  # kwok hands out pod IPs from here
KWOK_NODE_SELECTOR = "kwok.x-k8s.io/node=fake"


@dataclass(frozen=True)
class Ports:
    etcd_client: int
    etcd_peer: int
    apiserver: int
    controller_manager: int
    scheduler: int
    kwok: int


@dataclass(frozen=True)
class Layout:
    """Files of one run folder."""

    root: Path

    @property
    def pki(self) -> Path:
        return self.root / "pki"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def etcd_data(self) -> Path:
        return self.root / "etcd"

    @property
    def admin_kubeconfig(self) -> Path:
        return self.root / "kubeconfig"

    @property
    def state(self) -> Path:
        return self.root / "state.json"

    @property
    def kwok_config(self) -> Path:
        return self.root / "kwok.yaml"

    def kubeconfig(self, user: str) -> Path:
        return self.admin_kubeconfig if user == "admin" else self.root / f"{user}.kubeconfig"

    def cert(self, name: str) -> tuple[str, str]:
        return str(self.pki / f"{name}.crt"), str(self.pki / f"{name}.key")


def etcd_args(p: Ports, lay: Layout) -> list[str]:
    client, peer = f"http://127.0.0.1:{p.etcd_client}", f"http://127.0.0.1:{p.etcd_peer}"
    return [
        "--name=perennial",
        f"--data-dir={lay.etcd_data}",
        f"--listen-client-urls={client}",
        f"--advertise-client-urls={client}",
        f"--listen-peer-urls={peer}",
        f"--initial-advertise-peer-urls={peer}",
        f"--initial-cluster=perennial={peer}",
        # Test data is thrown away: fsync only costs time on a shared disk.
        "--unsafe-no-fsync=true",
        "--log-level=warn",
    ]


def apiserver_args(p: Ports, lay: Layout) -> list[str]:
    cert, key = lay.cert("apiserver")
    proxy_cert, proxy_key = lay.cert("front-proxy-client")
    kubelet_cert, kubelet_key = lay.cert("apiserver-kubelet-client")
    return [
        f"--etcd-servers=http://127.0.0.1:{p.etcd_client}",
        "--bind-address=127.0.0.1",
        "--advertise-address=127.0.0.1",
        f"--secure-port={p.apiserver}",
        f"--tls-cert-file={cert}",
        f"--tls-private-key-file={key}",
        f"--client-ca-file={lay.pki / 'ca.crt'}",
        "--authorization-mode=Node,RBAC",
        # As kubeadm and kind do: privileged pods are then refused by Pod Security
        # admission (what users meet in real clusters), not by a blanket apiserver flag.
        "--allow-privileged=true",
        # PodSecurity is on by default; naming it keeps it on if defaults ever change.
        # PodNodeSelector and PodTolerationRestriction let a namespace send its pods to the
        # real node (hack/perennial_hack/node/), which no other pod tolerates.
        "--enable-admission-plugins=PodSecurity,NodeRestriction,PodNodeSelector,"
        "PodTolerationRestriction",
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
        f"--service-account-key-file={lay.pki / 'sa.pub'}",
        f"--service-account-signing-key-file={lay.pki / 'sa.key'}",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        # Nothing routes to the `kubernetes` Service here, and a loopback endpoint is
        # rejected by validation: skip the reconciler instead of logging errors forever.
        "--endpoint-reconciler-type=none",
        f"--requestheader-client-ca-file={lay.pki / 'ca.crt'}",
        "--requestheader-allowed-names=front-proxy-client",
        "--requestheader-username-headers=X-Remote-User",
        "--requestheader-group-headers=X-Remote-Group",
        "--requestheader-extra-headers-prefix=X-Remote-Extra-",
        f"--proxy-client-cert-file={proxy_cert}",
        f"--proxy-client-key-file={proxy_key}",
        # Logs and exec on a real node: the kubelet is reached at its InternalIP (the
        # node's bridge address) with a client certificate it trusts.
        "--kubelet-preferred-address-types=InternalIP,Hostname",
        f"--kubelet-client-certificate={kubelet_cert}",
        f"--kubelet-client-key={kubelet_key}",
        "--profiling=false",
    ]


def controller_manager_args(p: Ports, lay: Layout) -> list[str]:
    kubeconfig = lay.kubeconfig("controller-manager")
    return [
        f"--kubeconfig={kubeconfig}",
        f"--authentication-kubeconfig={kubeconfig}",
        f"--authorization-kubeconfig={kubeconfig}",
        "--bind-address=127.0.0.1",
        f"--secure-port={p.controller_manager}",
        "--leader-elect=false",
        f"--service-account-private-key-file={lay.pki / 'sa.key'}",
        f"--root-ca-file={lay.pki / 'ca.crt'}",
        f"--cluster-signing-cert-file={lay.pki / 'ca.crt'}",
        f"--cluster-signing-key-file={lay.pki / 'ca.key'}",
        "--use-service-account-credentials=true",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        # Everything that runs in a real cluster (GC, Job, Deployment, ReplicaSet, namespace,
        # serviceaccount, ...); node IPAM needs a pod CIDR per node, which kwok does not need.
        "--controllers=*,-nodeipam",
        "--profiling=false",
    ]


def scheduler_args(p: Ports, lay: Layout) -> list[str]:
    kubeconfig = lay.kubeconfig("scheduler")
    return [
        f"--kubeconfig={kubeconfig}",
        f"--authentication-kubeconfig={kubeconfig}",
        f"--authorization-kubeconfig={kubeconfig}",
        "--bind-address=127.0.0.1",
        f"--secure-port={p.scheduler}",
        "--leader-elect=false",
        "--profiling=false",
    ]


def kwok_args(p: Ports, lay: Layout) -> list[str]:
    cert, key = lay.cert("kwok")
    return [
        f"--kubeconfig={lay.kubeconfig('kwok')}",
        f"--config={lay.kwok_config}",
        "--manage-all-nodes=false",
        f"--manage-nodes-with-annotation-selector={KWOK_NODE_SELECTOR}",
        f"--server-address=127.0.0.1:{p.kwok}",
        f"--cidr={POD_CIDR}",
        "--node-lease-duration-seconds=40",
        # kwok's server is the nodes' kubelet API: nodes get 127.0.0.1 and kwok's port as
        # their address and kubelet endpoint, so the API server's pods/log (kubectl logs)
        # reaches kwok, which reads the files the local runtime names in Logs objects. The
        # API server speaks HTTPS to kubelets (and does not verify them without
        # --kubelet-certificate-authority): kwok serves with its client certificate.
        "--node-ip=127.0.0.1",
        f"--node-port={p.kwok}",
        f"--tls-cert-file={cert}",
        f"--tls-private-key-file={key}",
        "--enable-crds=Logs",
    ]
