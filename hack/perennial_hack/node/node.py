"""A real node for the local control plane: containerd, runc, a CNI bridge and a kubelet,
registered as a Node, running pods of real images (imported from OCI archives).

    node = LocalNode(cluster, images=[archive])   # cluster: a started control_plane.Cluster
    node.start()                                  # ... pods land on node.name
    node.stop()                                   # every container, mount and link removed

Files live in <cluster run folder>/node/ (config.Layout); state.json there records the
pids and the bridge, so `stop` works from another process too (`make demo-down`).
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml

from perennial_hack.cluster import kubeapi, pki, process
from perennial_hack.cluster.control_plane import Cluster, node_is_ready, wait_until
from perennial_hack.cluster.flags import SERVICE_CIDR, SERVICE_IP
from perennial_hack.node import build, leftovers, network
from perennial_hack.node.config import (
    KubeletPorts,
    Layout,
    Network,
    apiserver_nat_rule,
    cni_config,
    containerd_argv,
    containerd_config,
    kubelet_argv,
    kubelet_config,
    node_subject,
)

CTR_NAMESPACE = "k8s.io"  # the CRI plugin's containerd namespace


class NodeError(RuntimeError):
    pass


def preflight(kubelet: Path, pause: Path) -> list[str]:
    """What is missing before a node can start, each with what to run."""
    problems = []
    missing = build.missing_host_tools()
    if missing:
        problems.append(f"missing Debian packages {', '.join(missing)}: run `make node-deps`")
    if not (kubelet.is_file() and pause.is_file()):
        problems.append(f"no kubelet or pause image in {kubelet.parent.parent}: run `make node`")
    if os.geteuid() != 0:
        problems.append("a real node needs root (containerd, mounts, network links)")
        return problems
    if not problems:
        problems.extend(kernel_problems())
    return problems


# cgroup v1 controllers runc sets for a pod's containers (cpu/memory limits, pids).
CGROUP_CONTROLLERS = ("cpu", "memory", "pids")


def kernel_problems(
    filesystems: Path = Path("/proc/filesystems"), cgroups: Path = Path("/sys/fs/cgroup")
) -> list[str]:
    """What the kernel must offer, named before anything starts: containerd's overlayfs
    snapshotter, the cgroup controllers runc writes, iptables' nat table (the kubernetes
    Service's DNAT) and Linux bridges (the pod network). Missing, the node would fail later
    with an error far from the cause (or a pod would never start)."""
    problems = []
    if "overlay" not in filesystems.read_text().split():
        problems.append(
            "the kernel has no overlay filesystem (containerd's snapshotter): modprobe overlay"
        )
    unified = (cgroups / "cgroup.controllers").exists()
    for controller in CGROUP_CONTROLLERS:
        if not unified and not (cgroups / controller).is_dir():
            problems.append(f"cgroup controller {controller} is not mounted under {cgroups}")
    missing = [tool for tool in ("iptables", "ip") if shutil.which(tool) is None]
    if missing:  # named, rather than a FileNotFoundError from the probes below
        return [
            *problems,
            f"{' and '.join(missing)} not found on PATH: make node-deps installs them "
            "(apt-get install iptables iproute2)",
        ]
    nat = subprocess.run(["iptables", "-t", "nat", "-S"], capture_output=True, text=True)
    if nat.returncode != 0:
        problems.append(
            f"iptables has no nat table ({nat.stderr.strip()}): modprobe iptable_nat or nf_tables"
        )
    probe = "pn-preflight"
    added = subprocess.run(
        ["ip", "link", "add", probe, "type", "bridge"], capture_output=True, text=True
    )
    if added.returncode != 0 and "exists" not in added.stderr:
        problems.append(f"cannot create a Linux bridge ({added.stderr.strip()}): modprobe bridge")
    subprocess.run(["ip", "link", "del", probe], capture_output=True)
    return problems


def mounts_under(root: Path, mountinfo: str) -> list[str]:
    """Mount points at or below root, deepest first (the order to unmount them)."""
    prefix = str(root).rstrip("/")
    points = []
    for line in mountinfo.splitlines():
        fields = line.split()
        if len(fields) > 4:
            point = fields[4].replace("\\040", " ")
            if point == prefix or point.startswith(prefix + "/"):
                points.append(point)
    return sorted(set(points), key=lambda p: (p.count("/"), p), reverse=True)


class LocalNode:
    def __init__(
        self,
        cluster: Cluster,
        *,
        images: Sequence[Path] = (),
        taint: bool = True,
        tie_to_parent: bool = False,
        log: Callable[[str], None] = print,
    ) -> None:
        self.cluster = cluster
        self.layout = Layout(cluster.run_dir / "node")
        self.name = f"perennial-{cluster.name}"
        self.images = tuple(images)
        self.taint = taint
        self.kubelet_bin = build.kubelet_path(cluster.versions)
        self.pause = build.pause_archive(cluster.versions)
        self._tie = tie_to_parent
        self._log = log
        self._children: list[subprocess.Popen[bytes]] = []

    # --- public surface -----------------------------------------------------------------

    @property
    def network(self) -> Network | None:
        state = self._state()
        if "bridge" not in state:
            return None
        import ipaddress

        return Network(state["bridge"], ipaddress.IPv4Network(state["subnet"]))

    @property
    def ip(self) -> str:
        net = self.network
        if net is None:
            raise NodeError("the node is not running")
        return net.gateway

    def start(self, timeout: float = 180.0) -> None:
        problems = preflight(self.kubelet_bin, self.pause)
        if problems:
            raise NodeError("; ".join(problems))
        self.stop(quiet=True)  # what a crashed run left
        if self._tie:
            atexit.register(self.stop, quiet=True)
        started = time.monotonic()
        try:
            self._start(time.monotonic() + timeout)
        except BaseException:
            self._log(self.log_tails())
            self.stop(quiet=True)
            raise
        self._log(f"node {self.name} Ready in {time.monotonic() - started:.1f}s ({self.ip})")

    def import_image(self, archive: Path) -> None:
        """Load an OCI archive into the node's containerd (what `kind load` does)."""
        self._ctr("images", "import", "--no-unpack=false", str(archive))

    def images_present(self) -> list[str]:
        return self._ctr("images", "ls", "-q").split()

    def stop(self, quiet: bool = False) -> None:
        """Stop the kubelet, every container and containerd; remove mounts, the bridge
        and the node's files except logs."""
        state = self._state()
        # Only processes that still name this node's folder: a recorded pid may have been
        # reused since a crashed run.
        pids = {c: p for c, p in state.get("pids", {}).items() if self._names_us(p)}
        process.stop([pids[c] for c in ("kubelet", "provisioner") if c in pids], grace_s=10.0)
        containers = self._remove_containers() if "containerd" in pids else []
        process.stop([pids[c] for c in ("containerd",) if c in pids], grace_s=10.0)
        self._kill_shims()
        for child in self._children:
            child.wait()
        self._children.clear()
        self._unmount_all()
        if state.get("nat"):
            network.unroute_service(state["nat"])
        if state.get("bridge"):
            network.delete(state["bridge"])
        self._remove_leftovers(containers, state)
        for folder in (self.layout.containerd_state, self.layout.kubelet_root):
            shutil.rmtree(folder, ignore_errors=True)
        if state:
            self.layout.state.unlink(missing_ok=True)
            if not quiet:
                self._log(f"node {self.name} stopped; logs in {self.layout.logs}")

    def log_tails(self, lines: int = 20) -> str:
        out = []
        for name in ("containerd", "kubelet"):
            log = self.layout.logs / f"{name}.log"
            if log.exists():
                tail = log.read_text(errors="replace").splitlines()[-lines:]
                out.append(f"--- {log}\n" + "\n".join(tail))
        return "\n".join(out)

    def container_log(self, namespace: str, pod: str, container: str) -> str:
        """What the container wrote (all its runs), from the kubelet's log files."""
        texts = []
        for folder in sorted(self.layout.pod_logs.glob(f"{namespace}_{pod}_*/{container}")):
            for log in sorted(folder.glob("*.log")):
                texts.append(log.read_text(errors="replace"))
        return "".join(texts)

    # --- internals ----------------------------------------------------------------------

    def _state(self) -> dict[str, Any]:
        try:
            state: dict[str, Any] = json.loads(self.layout.state.read_text())
        except (OSError, ValueError):
            return {}
        return state

    def _save(self, state: dict[str, Any]) -> None:
        self.layout.state.write_text(json.dumps(state, indent=2))

    def _api(self) -> kubeapi.LocalApi:
        cert, key = self.cluster.layout.cert("admin")
        ca = self.cluster.layout.pki / "ca.crt"
        return kubeapi.LocalApi(self.cluster.server, ca, Path(cert), Path(key))

    def _ctr(self, *args: str, check: bool = True) -> str:
        argv = ["ctr", "--address", str(self.layout.socket), "--namespace", CTR_NAMESPACE, *args]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=600)
        if check and done.returncode != 0:
            raise NodeError(f"ctr {' '.join(args[:2])}: {done.stderr.strip()[-500:]}")
        return done.stdout

    def _start(self, deadline: float) -> None:
        def left() -> float:
            return max(1.0, deadline - time.monotonic())

        for folder in (
            self.layout.logs,
            self.layout.cni_conf_dir,
            self.layout.pki,
            self.layout.pod_logs,
            self.layout.volumes,
        ):
            folder.mkdir(parents=True, exist_ok=True)
        net = network.allocate()
        state: dict[str, Any] = {"bridge": net.bridge, "subnet": str(net.subnet), "pids": {}}
        self._save(state)
        port = int(self.cluster.server.rsplit(":", 1)[1])
        state["nat"] = apiserver_nat_rule(net, SERVICE_IP, port)
        self._save(state)
        network.route_service(net.bridge, state["nat"])
        cni_dir = build.cni_bin_dir()
        assert cni_dir is not None  # preflight checked it
        self.layout.containerd_config.write_text(containerd_config(self.layout, cni_dir))
        conflist = cni_config(
            f"perennial-{self.cluster.name}", net, self.layout.cni_ipam_dir, SERVICE_CIDR
        )
        (self.layout.cni_conf_dir / "10-perennial.conflist").write_text(json.dumps(conflist))
        self._write_kubeconfig()
        self._spawn("containerd", containerd_argv(self.layout), state)
        wait_until(self._containerd_up, left(), "containerd")
        for archive in (self.pause, *self.images):
            started = time.monotonic()
            self.import_image(archive)
            self._log(f"  imported {archive.name} in {time.monotonic() - started:.0f}s")
        ports = KubeletPorts(*process.free_ports(2))
        ca = self.cluster.layout.pki / "ca.crt"
        config = kubelet_config(self.layout, net, ports, ca, taint=self.taint)
        self.layout.kubelet_config.write_text(yaml.safe_dump(config))
        argv = kubelet_argv(self.kubelet_bin, self.layout, self.name, net.gateway)
        self._spawn("kubelet", argv, state)
        provisioner = [
            sys.executable,
            "-m",
            "perennial_hack.node.provisioner",
            f"--kubeconfig={self.cluster.kubeconfig}",
            f"--root={self.layout.volumes / 'dynamic'}",
        ]
        self._spawn("provisioner", provisioner, state)
        api = self._api()
        wait_until(lambda: self._ready(api), left(), f"node {self.name} Ready", interval=0.5)

    def _write_kubeconfig(self) -> None:
        cn, org = node_subject(self.name)
        spec = pki.CertSpec("kubelet-client", cn, org)
        pki_dir = self.cluster.layout.pki
        argv = pki.leaf_argv(pki_dir, spec)
        # leaf_argv writes next to the CA; keep the node's pair in the node's own folder.
        argv = [
            a.replace(str(pki_dir / "kubelet-client"), str(self.layout.pki / "client"))
            for a in argv
        ]
        subprocess.run(argv, check=True, capture_output=True)
        (self.layout.pki / "client.key").chmod(0o600)
        config = kubeapi.kubeconfig(
            f"perennial-{self.cluster.name}",
            self.cluster.server,
            (pki_dir / "ca.crt").read_bytes(),
            (self.layout.pki / "client.crt").read_bytes(),
            (self.layout.pki / "client.key").read_bytes(),
        )
        self.layout.kubeconfig.write_text(yaml.safe_dump(config))
        self.layout.kubeconfig.chmod(0o600)

    def _spawn(self, name: str, argv: list[str], state: dict[str, Any]) -> None:
        child = process.spawn(argv, self.layout.logs / f"{name}.log", tie_to_parent=self._tie)
        self._children.append(child)
        state["pids"][name] = child.pid
        self._save(state)

    def _containerd_up(self) -> bool:
        pid = self._state()["pids"]["containerd"]
        if not process.alive(pid):
            raise NodeError(f"containerd exited; see {self.layout.logs / 'containerd.log'}")
        if not self.layout.socket.exists():
            return False
        argv = ["ctr", "--address", str(self.layout.socket), "version"]
        return subprocess.run(argv, capture_output=True, timeout=10).returncode == 0

    def _ready(self, api: kubeapi.LocalApi) -> bool:
        pid = self._state()["pids"]["kubelet"]
        if not process.alive(pid):
            raise NodeError(f"the kubelet exited; see {self.layout.logs / 'kubelet.log'}")
        node = api.get(f"/api/v1/nodes/{self.name}")
        return node is not None and node_is_ready(node)

    def _remove_containers(self) -> list[str]:
        """Kill and delete every task and container (a kubelet that is gone stops none);
        their ids (pod sandboxes too)."""
        containers: list[str] = []
        try:
            tasks = [line.split()[0] for line in self._ctr("tasks", "ls").splitlines()[1:]]
            for task in tasks:
                self._ctr("tasks", "kill", "--signal", "SIGKILL", task, check=False)
            for task in tasks:
                self._ctr("tasks", "delete", "--force", task, check=False)
            containers = self._ctr("containers", "ls", "-q").split()
            if containers:
                self._ctr("containers", "delete", *containers)
        except (NodeError, subprocess.TimeoutExpired) as err:
            self._log(f"node {self.name}: removing containers: {err}")
        return containers

    def _remove_leftovers(self, containers: list[str], state: dict[str, Any]) -> None:
        """What the node left outside its folder (see leftovers); what every node on the
        host shares only once none runs any more."""
        leftovers.remove_cni_results(containers)
        leftovers.remove_empty_cgroups(containers)
        if state and not leftovers.running(("kubelet", "containerd")):
            leftovers.remove_kubelet_chains()
            leftovers.remove_empty_run_folders()

    def _names_us(self, pid: int) -> bool:
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            return False
        return str(self.layout.root) in cmdline and process.alive(pid)

    def _kill_shims(self) -> None:
        """containerd-shim processes of this node (they name its state folder)."""
        marker = str(self.layout.containerd_state)
        for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
            try:
                text = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if "containerd-shim" in text and marker in text:
                try:
                    os.kill(int(cmdline.parent.name), signal.SIGKILL)
                except ProcessLookupError:
                    pass

    def _unmount_all(self) -> None:
        info = Path("/proc/self/mountinfo").read_text()
        for point in mounts_under(self.layout.root, info):
            subprocess.run(["umount", "-l", point], capture_output=True)
