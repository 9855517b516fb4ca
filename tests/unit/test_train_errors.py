"""Bad inputs: each gives a clear message, its own exit code and a termination message."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from perennial_runtime import contract
from support.training import run_job

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def _one_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "1")


def _spec(uri: str, **overrides: Any) -> dict[str, Any]:
    dataset = {"uri": uri} if uri.startswith("builtin://") else {"uri": uri, "target": "label"}
    spec: dict[str, Any] = {
        "model": "m",
        "task": "classification",
        "algorithm": "logistic_regression",
        "dataset": dataset,
    }
    return spec | overrides


def _csv_with_gaps(tmp_path: Path) -> str:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=100), "label": [0, 1] * 50})
    frame.loc[:39, "x"] = np.nan
    frame.to_csv(tmp_path / "gaps.csv", index=False)
    return f"file://{tmp_path}/gaps.csv"


CASES = [
    pytest.param(
        lambda t: _spec(f"file://{t}/absent.csv"),
        contract.EXIT_DATASET_UNAVAILABLE,
        "DatasetUnavailable",
        "no such file",
        id="missing-file",
    ),
    pytest.param(
        lambda t: _spec(_write(t, "bad.csv", b"\xff\xfe\x00garbage\n\x00\x01")),
        contract.EXIT_DATASET_UNAVAILABLE,
        "DatasetUnavailable",
        "cannot be read",
        id="unreadable-csv",
    ),
    pytest.param(
        lambda t: _spec(_write(t, "d.parquet", b"not parquet at all")),
        contract.EXIT_DATASET_UNAVAILABLE,
        "DatasetUnavailable",
        "parquet",
        id="unreadable-parquet",
    ),
    pytest.param(
        lambda t: _spec("builtin://mnist"),
        contract.EXIT_DATASET_UNAVAILABLE,
        "DatasetUnavailable",
        "unknown builtin",
        id="unknown-builtin",
    ),
    pytest.param(
        lambda t: _spec(_write(t, "a.csv", b"x,y\n1,2\n3,4\n")),
        contract.EXIT_DATA_INVALID,
        "DataInvalid",
        "target_column_absent",
        id="target-absent",
    ),
    pytest.param(
        lambda t: _spec(_csv_with_gaps(t), validation={"maxMissingFraction": 0.05}),
        contract.EXIT_DATA_INVALID,
        "DataInvalid",
        "column_missing_fraction_above_maximum in column 'x': observed 0.4",
        id="too-many-missing",
    ),
    pytest.param(
        lambda t: _spec("builtin://iris", algorithm="deep_forest"),
        contract.EXIT_BAD_SPEC,
        "BadSpec",
        "choose one of: auto, logistic_regression",
        id="unknown-algorithm",
    ),
    pytest.param(
        lambda t: _spec("builtin://iris", hyperparameters={"depth": 3}),
        contract.EXIT_BAD_SPEC,
        "BadSpec",
        "unknown hyperparameter(s) depth",
        id="unknown-hyperparameter",
    ),
    pytest.param(
        lambda t: _spec("builtin://iris", hyperparameters={"C": -1.0}),
        contract.EXIT_BAD_SPEC,
        "BadSpec",
        "invalid hyperparameter",
        id="bad-value",
    ),
    pytest.param(
        lambda t: _spec("builtin://iris", task="regression"),
        contract.EXIT_BAD_SPEC,
        "BadSpec",
        "not a built-in algorithm for task regression",
        id="task-mismatch",
    ),
    pytest.param(
        lambda t: _spec("builtin://iris", algorithm="auto", automl={"timeBudgetSeconds": 0}),
        contract.EXIT_BUDGET_TOO_SMALL,
        "BudgetTooSmall",
        "ran out before any candidate",
        id="budget-too-small",
    ),
]


def _write(tmp_path: Path, name: str, content: bytes) -> str:
    (tmp_path / name).write_bytes(content)
    return f"file://{tmp_path}/{name}"


@pytest.mark.parametrize(("make_spec", "code", "outcome", "phrase"), CASES)
def test_bad_input_fails_clearly(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    make_spec: Any,
    code: int,
    outcome: str,
    phrase: str,
) -> None:
    run = run_job(tmp_path, make_spec(tmp_path))
    err = capsys.readouterr().err
    assert run.code == code
    assert err.startswith(f"perennial-train: {outcome}: ") and phrase in err
    assert run.termination["outcome"] == outcome and phrase in run.termination["message"]
    assert not (run.output / contract.RESULT).exists()


def test_data_failure_report_names_check_column_observed_expected(tmp_path: Path) -> None:
    spec = _spec(
        _csv_with_gaps(tmp_path),
        validation={
            "maxMissingFraction": 0.05,
            "minRows": 1000,
            "schema": {"x": {"min": 0}, "label": {"categories": [0]}},
        },
    )
    run = run_job(tmp_path, spec)
    assert run.code == contract.EXIT_DATA_INVALID
    failures = {f["check"]: f for f in run.termination["failures"]}
    assert failures["dataset_rows_below_minimum"] == {
        "check": "dataset_rows_below_minimum",
        "column": None,
        "observed": 100,
        "expected": ">= 1000",
    }
    assert failures["column_missing_fraction_above_maximum"]["observed"] == 0.4
    assert failures["value_below_minimum"]["column"] == "x"
    assert failures["value_not_in_categories"]["observed"] == ["1"]


def test_validate_only_checks_the_data(tmp_path: Path) -> None:
    good = run_job(tmp_path / "good", _spec("builtin://iris"), validate=True)
    assert good.code == 0 and good.termination["outcome"] == "Validated"
    assert good.termination["dataset"]["rows"] == 150
    assert not good.output.exists()
    bad = run_job(
        tmp_path / "bad",
        _spec(_csv_with_gaps(tmp_path), validation={"maxMissingFraction": 0.1}),
        validate=True,
    )
    assert bad.code == contract.EXIT_DATA_INVALID


def test_huge_failure_list_is_truncated_to_the_kubelet_limit(tmp_path: Path) -> None:
    frame = pd.DataFrame({f"column_with_a_long_name_{i}": [np.nan] * 5 for i in range(300)})
    frame["label"] = [0, 1, 0, 1, 0]
    frame.to_csv(tmp_path / "wide.csv", index=False)
    run = run_job(
        tmp_path, _spec(f"file://{tmp_path}/wide.csv", validation={"maxMissingFraction": 0.5})
    )
    raw = (tmp_path / "termination-log").read_bytes()
    assert run.code == contract.EXIT_DATA_INVALID
    assert len(raw) <= contract.TERMINATION_MESSAGE_MAX_BYTES
    assert run.termination["truncated"] is True and run.termination["failures"]


def test_unreadable_manifest_is_a_bad_spec(tmp_path: Path) -> None:
    from perennial_runtime.train.cli import main

    (tmp_path / "job.yaml").write_text("spec: [unclosed")
    code = main(
        [
            "-f",
            str(tmp_path / "job.yaml"),
            "--output",
            str(tmp_path / "o"),
            "--termination-log",
            str(tmp_path / "t"),
        ]
    )
    assert code == contract.EXIT_BAD_SPEC


def test_unexpected_error_is_a_crash_with_exit_code_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from perennial_runtime.train.cli import main

    (tmp_path / "job.json").write_text(
        json.dumps({"kind": "TrainingJob", "spec": _spec("builtin://iris")})
    )
    (tmp_path / "taken").write_text("a file where the model directory should go")
    code = main(
        [
            "-f",
            str(tmp_path / "job.json"),
            "--output",
            str(tmp_path / "taken"),
            "--termination-log",
            str(tmp_path / "t"),
        ]
    )
    assert code == contract.EXIT_CRASH
    assert "perennial-train: Crashed: perennial-train crashed: FileExistsError" in (
        capsys.readouterr().err
    )
    assert json.loads((tmp_path / "t").read_text())["outcome"] == "Crashed"
