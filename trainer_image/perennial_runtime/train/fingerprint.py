"""``perennial-train fingerprint``: the dataset's sha256 and row count, nothing else.

A RetrainPolicy with ``triggers.newData`` runs this in a small probe pod to learn whether
the template's dataset changed since the serving model was trained. The numbers come from
``datasets.load``, the very function training reads the data with, so they mean exactly
what ``result.json`` records under ``dataset`` (sha256 of the bytes read, or of the
canonical CSV for builtin:// sets; rows after loading, before any check or split).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from perennial_runtime.train import datasets
from perennial_runtime.train.progress import Progress
from perennial_runtime.train.spec import TrainingJob

OUTCOME = "Fingerprinted"


def fingerprint(job: TrainingJob, pvc_root: Path, progress: Progress) -> dict[str, Any]:
    """The termination message: {"outcome": "Fingerprinted", "dataset": {uri, sha256, rows}}.

    Raises DatasetUnavailable (exit code 4) when the data cannot be read or parsed."""
    progress.stage("loading", job.dataset.uri)
    loaded = datasets.load(job.dataset.uri, job.dataset.format, pvc_root, job.dataset.max_bytes)
    progress.stage("fingerprinted", f"sha256 {loaded.sha256}, {loaded.rows} rows")
    return {
        "outcome": OUTCOME,
        "dataset": {"uri": loaded.uri, "sha256": loaded.sha256, "rows": loaded.rows},
    }
