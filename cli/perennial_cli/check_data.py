"""`perennial check-data`: the training pod's `validate` step, run here.

It is the trainer's own code (`perennial-train validate`), so the report and the exit codes
are the pod's: 0 passed, 2 bad spec, 3 data checks failed, 4 dataset unavailable, 1 crash.
The runtime is an optional extra; without it this says how to install it.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

INSTALL_HINT = (
    "check-data runs the trainer's own data checks and needs the runtime: "
    "pip install 'perennial[cli,runtime]'"
)


class RuntimeMissing(Exception):
    pass


def run(manifest: str, pvc_root: str | None) -> tuple[int, dict[str, Any]]:
    """(exit code, the termination message the pod would have written)."""
    try:
        from perennial_runtime.train import cli as train_cli
    except ImportError as exc:
        raise RuntimeMissing(INSTALL_HINT) from exc
    with tempfile.TemporaryDirectory(prefix="perennial-check-data-") as tmp:
        report = Path(tmp) / "termination-log"
        argv = ["validate", "-f", manifest, "--termination-log", str(report)]
        if pvc_root:
            argv += ["--pvc-root", pvc_root]
        code = train_cli.main(argv)
        message = json.loads(report.read_text()) if report.exists() else {}
    return code, message
