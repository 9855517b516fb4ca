"""Native thread limit: OMP_NUM_THREADS, else the cgroup CPU quota, else the CPUs we have."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from perennial_runtime.train.threads import thread_limit

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("env", "cpu_max", "expected"),
    [
        pytest.param("3", "200000 100000", 3, id="env-wins"),
        pytest.param("", "150000 100000", 1, id="quota-rounds-down"),
        pytest.param("", "50000 100000", 1, id="at-least-one"),
    ],
)
def test_thread_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, env: str, cpu_max: str, expected: int
) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", env)
    (tmp_path / "cpu.max").write_text(cpu_max + "\n")
    assert thread_limit(tmp_path / "cpu.max") == expected


def test_no_quota_means_every_available_cpu(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert thread_limit(tmp_path / "cpu.max") == len(os.sched_getaffinity(0))
    assert thread_limit(tmp_path / "absent") == len(os.sched_getaffinity(0))
