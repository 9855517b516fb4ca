"""What a stopped node removes from the host outside its folder (perennial_hack.node.
leftovers): the pure choices, and the removals on scratch folders. The real iptables
chains, cgroups and CNI cache are removed in the e2e node's teardown."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from perennial_hack.node import leftovers

pytestmark = pytest.mark.unit

LISTING = """-P INPUT ACCEPT
-N KUBE-FIREWALL
-N KUBE-KUBELET-CANARY
-A INPUT -j KUBE-FIREWALL
-A OUTPUT -j KUBE-FIREWALL
-A FORWARD -j KUBE-FIREWALL-EXTRA
-A KUBE-FIREWALL ! -s 127.0.0.0/8 -d 127.0.0.0/8 -j DROP
"""


def test_the_jumps_into_a_chain_are_found_but_not_its_own_rules_or_other_chains():
    assert leftovers.chain_references(LISTING, "KUBE-FIREWALL") == [
        "-A INPUT -j KUBE-FIREWALL",
        "-A OUTPUT -j KUBE-FIREWALL",
    ]
    assert leftovers.chain_references(LISTING, "KUBE-KUBELET-CANARY") == []


def test_only_the_cni_results_of_our_sandboxes_are_chosen():
    names = [
        "perennial-a-abc123-eth0",
        "cni-loopback-abc123-lo",
        "perennial-b-def456-eth0",
        "cni-loopback-abc1234-lo",  # a longer id sharing the prefix is someone else's
    ]
    assert leftovers.cni_results_of(names, ["abc123"]) == [
        "cni-loopback-abc123-lo",
        "perennial-a-abc123-eth0",
    ]


def test_cni_results_of_other_sandboxes_stay(tmp_path: Path):
    for name in ("net-aaa-eth0", "cni-loopback-aaa-lo", "net-bbb-eth0"):
        (tmp_path / name).write_text("{}")
    leftovers.remove_cni_results(["aaa"], tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net-bbb-eth0"]


def test_empty_cgroups_go_and_busy_ones_stay(tmp_path: Path):
    for controller in ("memory", "pids"):
        (tmp_path / controller / "k8s.io" / "c1").mkdir(parents=True)
    (tmp_path / "pids" / "k8s.io" / "c2").mkdir()  # another node's container
    leftovers.remove_empty_cgroups(["c1"], tmp_path)
    assert not (tmp_path / "memory" / "k8s.io").exists()
    assert sorted(p.name for p in (tmp_path / "pids" / "k8s.io").iterdir()) == ["c2"]


def test_empty_run_folders_go_but_not_a_file_in_them(tmp_path: Path):
    run = tmp_path / "containerd"
    (run / "runc" / "k8s.io").mkdir(parents=True)
    (run / "s").mkdir()
    leftovers.remove_empty_run_folders(run)
    assert not run.exists()
    (run / "s").mkdir(parents=True)
    (run / "s" / "sock").write_text("")
    leftovers.remove_empty_run_folders(run)
    assert sorted(p.name for p in run.iterdir()) == ["s"]


def test_running_finds_processes_by_their_executable():
    exe = Path(os.readlink("/proc/self/exe")).name
    assert os.getpid() in leftovers.running([exe])
    assert leftovers.running(["no-such-program-here"]) == []


def test_a_missing_iptables_is_named_not_a_traceback(tmp_path: Path, monkeypatch):
    # On a fresh machine before `make node-deps`, the probe raised FileNotFoundError.
    from perennial_hack.node import node

    filesystems = tmp_path / "filesystems"
    filesystems.write_text("nodev\toverlay\n")
    (tmp_path / "cgroup" / "cgroup.controllers").parent.mkdir()
    (tmp_path / "cgroup" / "cgroup.controllers").write_text("cpu memory pids\n")
    monkeypatch.setattr(
        node.shutil, "which", lambda tool: None if tool == "iptables" else f"/usr/sbin/{tool}"
    )
    problems = node.kernel_problems(filesystems, tmp_path / "cgroup")
    assert len(problems) == 1
    assert problems[0].startswith("iptables not found on PATH: make node-deps")
