"""Small promises a user relies on: one default batch size everywhere, and
`perennial-train --help` names its subcommands."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from perennial_cli.crdcheck import Checker, version_schema
from perennial_runtime.serve import cli as serve_cli
from perennial_runtime.serve.batching import MicroBatcher
from perennial_runtime.serve.config import Config
from perennial_runtime.train.cli import STEPS

pytestmark = pytest.mark.unit


def crd_batch_default() -> int:
    schema = version_schema(Checker.load().crds["InferenceService"])
    batching = schema["properties"]["spec"]["properties"]["batching"]
    return int(batching["properties"]["maxBatchSize"]["default"])


def test_one_default_batch_size() -> None:
    parsed = serve_cli.parse_args(["--model-dir", "/m"])
    defaults = {
        "crd": crd_batch_default(),
        "perennial-serve --max-batch-size": parsed.max_batch_size,
        "serve Config": Config.__dataclass_fields__["max_batch_size"].default,
        "MicroBatcher": MicroBatcher.__dataclass_fields__["max_batch_size"].default,
    }
    assert len(set(defaults.values())) == 1, defaults


def test_perennial_train_help_lists_its_subcommands() -> None:
    exe = Path(sys.executable).parent / "perennial-train"
    out = subprocess.run([str(exe), "--help"], capture_output=True, text=True, timeout=120,
                         check=False)  # fmt: skip
    assert out.returncode == 0
    for step in STEPS:
        assert f"perennial-train {step}" in out.stdout
    assert "3 data invalid" in out.stdout
