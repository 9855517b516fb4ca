"""How many native threads the numeric libraries may use.

OpenMP (HistGradientBoosting, k-means) and BLAS start one thread per host core by default.
In a pod limited to one CPU, or on a shared machine, those threads wait on each other and
a 0.2 s fit takes seconds. The limit is OMP_NUM_THREADS when set, else the container's
CPU quota (cgroup v2 cpu.max), else the CPUs this process may run on.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

CPU_MAX = Path("/sys/fs/cgroup/cpu.max")


def thread_limit(cpu_max: Path = CPU_MAX) -> int:
    configured = os.environ.get("OMP_NUM_THREADS", "")
    if configured.isdigit() and int(configured) > 0:
        return int(configured)
    quota = _cgroup_quota(cpu_max)
    available = len(os.sched_getaffinity(0))
    return max(1, min(available, quota)) if quota else available


def _cgroup_quota(cpu_max: Path) -> int | None:
    try:
        limit, period = cpu_max.read_text().split()[:2]
    except (OSError, ValueError):
        return None
    if limit == "max":
        return None
    return max(1, math.floor(int(limit) / int(period)))
