"""The node's preflight on this machine's kernel (perennial_hack.node.node.kernel_problems):
it probes the real iptables nat table and makes a Linux bridge, so it needs root and
`make node-deps` (iptables, iproute2), which `make test-integration` installs and
`make test-unit` does not."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def test_the_node_names_a_missing_kernel_feature_before_it_starts(tmp_path: Path):
    from perennial_hack.node.node import kernel_problems

    if os.geteuid() != 0:
        pytest.skip("the bridge and iptables probes need root, as the node does")
    filesystems = tmp_path / "filesystems"
    filesystems.write_text("nodev\tproc\n\text4\n")
    cgroups = tmp_path / "cgroup"
    (cgroups / "cpu").mkdir(parents=True)
    problems = kernel_problems(filesystems, cgroups)
    assert any("no overlay filesystem" in p for p in problems)
    assert sum("cgroup controller" in p for p in problems) == 2  # memory, pids
    filesystems.write_text("nodev\toverlay\n")
    for name in ("memory", "pids"):
        (cgroups / name).mkdir()
    assert kernel_problems(filesystems, cgroups) == []  # this machine has bridges and nat
