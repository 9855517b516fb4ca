"""`perennial check-data`: the training pod's `validate` step, run here.

It is the trainer's own code (`perennial-train validate`), so the report and the exit codes
are the pod's: 0 passed, 2 bad spec, 3 data checks failed, 4 dataset unavailable, 1 crash.
A RetrainPolicy is checked through its template (the TrainingJob it will create). The
runtime is an optional extra; without it this says how to install it.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

from perennial_cli.crdcheck import Loader

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
        job = Path(tmp) / "trainingjob.yaml"
        job.write_text(trainingjob_text(_read(manifest)))
        argv = ["validate", "-f", str(job), "--termination-log", str(report)]
        if pvc_root:
            argv += ["--pvc-root", pvc_root]
        code = train_cli.main(argv)
        message = json.loads(report.read_text()) if report.exists() else {}
    return code, message


def _read(manifest: str) -> str:
    if manifest == "-":
        return sys.stdin.read()
    try:
        return Path(manifest).read_text(encoding="utf-8")
    except OSError:
        return ""  # the trainer reports the missing file, with its own exit code


def trainingjob_text(text: str) -> str:
    """The TrainingJob to check: the manifest itself, or a RetrainPolicy's template."""
    try:
        obj = yaml.load(text, Loader=Loader)
    except yaml.YAMLError:
        return text  # the trainer reports it as a bad spec, with its own exit code
    if not isinstance(obj, dict) or obj.get("kind") != "RetrainPolicy":
        return text
    meta = obj.get("metadata") or {}
    job = {
        "apiVersion": obj.get("apiVersion"),
        "kind": "TrainingJob",
        "metadata": {"name": f"{meta.get('name', 'retrainpolicy')}-template"},
        "spec": (obj.get("spec") or {}).get("template") or {},
    }
    return yaml.safe_dump(job, sort_keys=False)
