"""`perennial check-data` is the training pod's validate step: same report, same exit codes
as `perennial-train validate`, on real data (scikit-learn's breast cancer set)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from perennial_cli.main import cli
from perennial_runtime import contract
from support.training import validate_process

pytestmark = pytest.mark.unit


def manifest(tmp_path: Path, **spec: object) -> Path:
    body = {"apiVersion": "perennial.dev/v1alpha1", "kind": "TrainingJob",
            "metadata": {"name": "bc"},
            "spec": {"model": "bc", "task": "classification",
                     "dataset": {"uri": "builtin://breast_cancer", "target": "target"},
                     **spec}}  # fmt: skip
    path = tmp_path / "tj.yaml"
    path.write_text(yaml.safe_dump(body))
    return path


def check(path: Path) -> tuple[int, dict[str, object], str]:
    result = CliRunner().invoke(cli, ["check-data", "-f", str(path), "--json"])
    report = json.loads(result.stdout[result.stdout.index("{") :])
    return result.exit_code, report, result.stdout


def test_passing_data(tmp_path: Path) -> None:
    path = manifest(tmp_path, validation={"minRows": 100})
    code, report, _ = check(path)
    assert code == contract.EXIT_OK
    assert report["outcome"] == "Validated"
    assert report["dataset"]["rows"] == 569  # type: ignore[index]
    assert (code, report) == validate_process(path, tmp_path)


def test_failing_checks_exit_3_with_each_failure(tmp_path: Path) -> None:
    path = manifest(tmp_path, validation={"minRows": 100000, "minClassFraction": 0.45})
    code, report, _ = check(path)
    assert code == contract.EXIT_DATA_INVALID
    checks = {f["check"] for f in report["failures"]}  # type: ignore[union-attr]
    assert {"dataset_rows_below_minimum", "minority_class_fraction_below_minimum"} <= checks
    assert (code, report) == validate_process(path, tmp_path)
    readable = CliRunner().invoke(cli, ["check-data", "-f", str(path)])
    assert readable.exit_code == code
    assert "DataInvalid" in readable.stdout and "dataset_rows_below_minimum" in readable.stdout


def test_a_missing_dataset_exits_4(tmp_path: Path) -> None:
    path = manifest(tmp_path, dataset={"uri": f"file://{tmp_path}/none.csv", "target": "y"})
    code, report, _ = check(path)
    assert code == contract.EXIT_DATASET_UNAVAILABLE
    assert report["outcome"] == "DatasetUnavailable"


def test_without_the_runtime_it_says_what_to_install(tmp_path: Path) -> None:
    path = manifest(tmp_path)
    code = (
        "import sys; sys.modules['perennial_runtime'] = None\n"
        "from perennial_cli.main import main\n"
        f"sys.argv = ['perennial', 'check-data', '-f', {str(path)!r}]\nmain()\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, check=False)  # fmt: skip
    assert out.returncode == 1
    assert "pip install 'perennial[cli,runtime]'" in out.stderr
