"""What a node leaves on the host outside its own folder, and removing it, so the host
ends as it was found (a second node in the same session, or the next session, starts
clean).

- The kubelet's iptables chains (IPv4 and IPv6): KUBE-FIREWALL with its "block incoming
  localnet connections" rule, KUBE-KUBELET-CANARY, KUBE-IPTABLES-HINT. The kubelet makes
  them at start and never removes them.
- libcni's result cache, /var/lib/cni/results/<network>-<sandbox id>-<ifname>: written by
  containerd per pod sandbox, removed only by a CNI DEL that a killed node never sends.
- The cgroups containerd made for containers (<controller>/k8s.io/<id>) once empty, and
  the shim folders under /run/containerd once empty.

The chains and /run/containerd are shared by every node on the host: the caller removes
them only when no kubelet or containerd runs any more (`running`).
"""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path

KUBELET_CHAINS = {
    "filter": ("KUBE-FIREWALL", "KUBE-KUBELET-CANARY"),
    "nat": ("KUBE-KUBELET-CANARY",),
    "mangle": ("KUBE-IPTABLES-HINT", "KUBE-KUBELET-CANARY"),
}
CNI_RESULTS = Path("/var/lib/cni/results")
CGROUP_ROOT = Path("/sys/fs/cgroup")
CGROUP_PARENT = "k8s.io"  # containerd's parent when the kubelet gives none (no QoS cgroups)
CONTAINERD_RUN = Path("/run/containerd")


def chain_references(rules: str, chain: str) -> list[str]:
    """The `-A` lines of an `iptables -S` listing that jump to `chain` (to delete first)."""
    found = []
    for line in rules.splitlines():
        words = line.split()
        if words[:1] == ["-A"] and words[1] != chain and f" -j {chain} " in f"{line} ":
            found.append(line)
    return found


def cni_results_of(names: Iterable[str], sandbox_ids: Iterable[str]) -> list[str]:
    """Cache file names (of `names`) that belong to one of the sandboxes."""
    ids = set(sandbox_ids)
    return sorted(n for n in names if any(f"-{i}-" in n for i in ids))


def running(programs: Iterable[str], proc: Path = Path("/proc")) -> list[int]:
    """Pids of running processes whose executable is one of `programs` (by file name)."""
    names = set(programs)
    found = []
    for exe in proc.glob("[0-9]*/exe"):
        try:
            name = exe.readlink().name
        except OSError:
            continue
        if name in names:
            found.append(int(exe.parent.name))
    return found


def remove_kubelet_chains() -> None:
    for tool in ("iptables", "ip6tables"):
        for table, chains in KUBELET_CHAINS.items():
            listing = subprocess.run(
                [tool, "-t", table, "-S"], capture_output=True, text=True
            ).stdout
            for chain in chains:
                for rule in chain_references(listing, chain):
                    subprocess.run(
                        [tool, "-t", table, "-D", *shlex.split(rule)[1:]], capture_output=True
                    )
                subprocess.run([tool, "-t", table, "-F", chain], capture_output=True)
                subprocess.run([tool, "-t", table, "-X", chain], capture_output=True)


def remove_cni_results(sandbox_ids: Sequence[str], results: Path = CNI_RESULTS) -> None:
    if not sandbox_ids or not results.is_dir():
        return
    names = [p.name for p in results.iterdir()]
    for name in cni_results_of(names, sandbox_ids):
        (results / name).unlink(missing_ok=True)


def remove_empty_cgroups(container_ids: Sequence[str], root: Path = CGROUP_ROOT) -> None:
    """rmdir only: a cgroup that still holds a process (or another node's) stays."""
    for controller in root.glob("*"):
        parent = controller / CGROUP_PARENT
        if not parent.is_dir():
            continue
        for cid in container_ids:
            _rmdir(parent / cid)
        _rmdir(parent)


def remove_empty_run_folders(run: Path = CONTAINERD_RUN) -> None:
    if not run.is_dir():
        return
    for folder in sorted(run.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if folder.is_dir():
            _rmdir(folder)
    _rmdir(run)


def _rmdir(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:
        pass
