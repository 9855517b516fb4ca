"""Run the installed `perennial` command as a user would: a process with a kubeconfig."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

PERENNIAL = str(Path(sys.executable).parent / "perennial")


def perennial(
    kubeconfig: str | Path, namespace: str, *args: str, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """`perennial ARGS -n NAMESPACE` with KUBECONFIG set (the CLI's own flags, not a test
    hook); wide output so that tables are not folded."""
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "COLUMNS": "250"}
    return subprocess.run(
        [PERENNIAL, *args, "-n", namespace],
        capture_output=True, text=True, env=env, timeout=timeout, check=False,
    )  # fmt: skip
