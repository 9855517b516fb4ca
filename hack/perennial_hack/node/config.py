"""Configuration of a real node: containerd, the CNI network and the kubelet. Pure: paths,
names and addresses in, file contents and command lines out.

The settings follow kind's node image where this machine allows (cgroupfs driver, runc,
the bridge + host-local CNI plugins) and differ where it does not: no systemd, cgroup v1,
no CAP_SYS_RESOURCE. See docs/local-node.md for each choice.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# What a pod needs to land on this node: the node carries this label and taint, and a
# namespace that wants its pods here says so (annotations read by the PodNodeSelector and
# PodTolerationRestriction admission plugins of the local apiserver).
NODE_LABEL = ("perennial.dev/node", "real")
NODE_TAINT = {"key": "perennial.dev/node", "value": "real", "effect": "NoSchedule"}
NAMESPACE_ANNOTATIONS = {
    "scheduler.alpha.kubernetes.io/node-selector": f"{NODE_LABEL[0]}={NODE_LABEL[1]}",
    "scheduler.alpha.kubernetes.io/defaultTolerations": (
        '[{"key": "perennial.dev/node", "operator": "Equal", "value": "real", '
        '"effect": "NoSchedule"}]'
    ),
}
# The sandbox ("pause") image, built here from Kubernetes' own pause.c: no registry.
PAUSE_IMAGE = "registry.k8s.io/pause:3.10.2"
# Pod networks come from here, one /24 per node (10.96/16 holds Service IPs, 10.244/16
# kwok's fake pod IPs, 10.88/16 podman's default network).
POD_SUPERNET = ipaddress.IPv4Network("10.90.0.0/16")
CNI_VERSION = "1.0.0"


@dataclass(frozen=True)
class Layout:
    """Files and folders of one node, all under `root` (the cluster's run folder/node)."""

    root: Path

    @property
    def containerd_root(self) -> Path:
        return self.root / "containerd"

    @property
    def containerd_state(self) -> Path:
        return self.root / "containerd-state"

    @property
    def containerd_config(self) -> Path:
        return self.root / "containerd.toml"

    @property
    def socket(self) -> Path:
        return self.root / "containerd.sock"

    @property
    def cni_conf_dir(self) -> Path:
        return self.root / "cni" / "net.d"

    @property
    def cni_ipam_dir(self) -> Path:
        return self.root / "cni" / "ipam"

    @property
    def kubelet_root(self) -> Path:
        return self.root / "kubelet"

    @property
    def kubelet_config(self) -> Path:
        return self.root / "kubelet.yaml"

    @property
    def kubeconfig(self) -> Path:
        return self.root / "kubelet.kubeconfig"

    @property
    def pki(self) -> Path:
        return self.root / "pki"

    @property
    def pod_logs(self) -> Path:
        return self.root / "pod-logs"

    @property
    def volumes(self) -> Path:
        """Folders behind the node's PersistentVolumes (hostPath), per namespace/claim."""
        return self.root / "volumes"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def state(self) -> Path:
        return self.root / "state.json"


@dataclass(frozen=True)
class Network:
    bridge: str  # Linux interface name (<= 15 characters)
    subnet: ipaddress.IPv4Network

    @property
    def gateway(self) -> str:
        """The bridge's own address: the node IP, the pods' gateway and host address."""
        return str(next(self.subnet.hosts()))


def free_subnet(
    used: Iterable[ipaddress.IPv4Network], supernet: ipaddress.IPv4Network = POD_SUPERNET
) -> ipaddress.IPv4Network:
    """The first /24 of `supernet` overlapping none of `used` (routes already on the host)."""
    taken = list(used)
    for subnet in supernet.subnets(new_prefix=24):
        if not any(subnet.overlaps(other) for other in taken):
            return subnet
    raise RuntimeError(f"no free /24 left in {supernet}")


def bridge_name(subnet: ipaddress.IPv4Network) -> str:
    """pn-10-90-3: one bridge per subnet, so two nodes on one host never share one."""
    return "pn-" + "-".join(str(subnet.network_address).split(".")[:3])


def containerd_config(layout: Layout, cni_bin_dir: Path, sandbox_image: str = PAUSE_IMAGE) -> str:
    """containerd 1.6 (config version 2) with the CRI plugin, runc, overlayfs and CNI.

    restrict_oom_score_adj: without CAP_SYS_RESOURCE a container's oom_score_adj may not
    go below containerd's own, so containerd clamps it instead of failing the container.
    netns_mounts_under_state_dir: pod network namespaces live in our state folder, so a
    teardown finds every one of them.
    """
    return f"""version = 2
root = "{layout.containerd_root}"
state = "{layout.containerd_state}"

[grpc]
  address = "{layout.socket}"

[ttrpc]
  address = "{layout.socket}.ttrpc"

[metrics]
  address = ""

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{sandbox_image}"
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{cni_bin_dir}"
    conf_dir = "{layout.cni_conf_dir}"
"""


def cni_config(name: str, network: Network, ipam_dir: Path, service_cidr: str) -> dict[str, Any]:
    """A bridge network with host-local addresses: pods reach each other and the host
    (the bridge's address); no masquerading, no port mapping: nothing leaves the machine.

    isGateway only gives the bridge its address: without a route the pod has none but its
    /24, and dialing the `kubernetes` Service fails with "Network is unreachable" before the
    host's DNAT rule (apiserver_nat_rule) can see the packet. So the Service range goes via
    the bridge; no default route, as nothing beyond the host is reachable anyway."""
    return {
        "cniVersion": CNI_VERSION,
        "name": name,
        "plugins": [
            {
                "type": "bridge",
                "bridge": network.bridge,
                "isGateway": True,
                "ipMasq": False,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": str(network.subnet), "gateway": network.gateway}]],
                    "routes": [{"dst": service_cidr, "gw": network.gateway}],
                    "dataDir": str(ipam_dir),
                },
            }
        ],
    }


@dataclass(frozen=True)
class KubeletPorts:
    server: int
    healthz: int


def kubelet_config(
    layout: Layout, network: Network, ports: KubeletPorts, client_ca: Path, taint: bool = True
) -> dict[str, Any]:
    """KubeletConfiguration. What this machine needs, as kind does on similar hosts:
    cgroupfs (no systemd), cgroup v1 allowed (failCgroupV1), no QoS cgroup hierarchy and so
    no node-allocatable enforcement; no disk-pressure eviction or image GC, which would
    remove the images we imported (there is no registry to pull them back from)."""
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "address": network.gateway,
        "port": ports.server,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": ports.healthz,
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": False},
            "x509": {"clientCAFile": str(client_ca)},
        },
        # The apiserver's kubelet client is system:masters; nothing else has a client
        # certificate from this CA that can reach the bridge address.
        "authorization": {"mode": "AlwaysAllow"},
        "cgroupDriver": "cgroupfs",
        "cgroupsPerQOS": False,
        "enforceNodeAllocatable": [],
        "failCgroupV1": False,
        "failSwapOn": False,
        "containerRuntimeEndpoint": f"unix://{layout.socket}",
        "imageServiceEndpoint": f"unix://{layout.socket}",
        "podLogsDir": str(layout.pod_logs),
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "evictionHard": {
            "nodefs.available": "0%",
            "nodefs.inodesFree": "0%",
            "imagefs.available": "0%",
        },
        # Tainted next to kwok nodes, so only namespaces that ask land here; untainted
        # as a cluster's only node, where every pod lands (as in kind).
        "registerWithTaints": [dict(NODE_TAINT)] if taint else [],
        "resolvConf": "/etc/resolv.conf",
        "serializeImagePulls": False,
        "staticPodPath": "",
        "syncFrequency": "10s",
        "nodeStatusReportFrequency": "10s",
    }


def kubelet_argv(binary: Path, layout: Layout, node_name: str, node_ip: str) -> list[str]:
    return [
        str(binary),
        f"--config={layout.kubelet_config}",
        f"--kubeconfig={layout.kubeconfig}",
        f"--root-dir={layout.kubelet_root}",
        f"--cert-dir={layout.pki}",
        f"--hostname-override={node_name}",
        f"--node-ip={node_ip}",
        f"--node-labels={NODE_LABEL[0]}={NODE_LABEL[1]}",
        "--v=1",
    ]


def containerd_argv(layout: Layout) -> list[str]:
    return ["containerd", f"--config={layout.containerd_config}"]


def node_subject(node_name: str) -> tuple[str, str]:
    """(CN, O) of the kubelet's client certificate, as the Node authorizer expects."""
    return f"system:node:{node_name}", "system:nodes"


def apiserver_nat_rule(network: Network, service_ip: str, apiserver_port: int) -> list[str]:
    """iptables arguments (after -A/-D) sending the `kubernetes` Service (what in-cluster
    clients dial, <service_ip>:443) from this node's pods to the API server on this host's
    loopback: the one Service kube-proxy would route here. Needs route_localnet on the
    bridge, as kube-proxy's localhost node ports do."""
    return [
        "PREROUTING",
        "-t",
        "nat",
        "-i",
        network.bridge,
        "-d",
        f"{service_ip}/32",
        "-p",
        "tcp",
        "--dport",
        "443",
        "-j",
        "DNAT",
        "--to-destination",
        f"127.0.0.1:{apiserver_port}",
    ]
