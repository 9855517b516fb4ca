"""Data checks: pure functions named like sentences, tested as tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from perennial_runtime.train import checks
from perennial_runtime.train.spec import ColumnRule, parse_spec

pytestmark = pytest.mark.unit

FRAME = pd.DataFrame(
    {
        "age": [20.0, 35.0, np.nan, 61.0],
        "plan": ["basic", "pro", "pro", "gold"],
        "flag": [1, 1, 1, 1],
        "label": [0, 1, 0, 1],
    }
)


@pytest.mark.parametrize(
    ("rule", "checks_found"),
    [
        pytest.param(ColumnRule(type="number", min=18, max=65), [], id="in-range"),
        pytest.param(ColumnRule(min=21), ["value_below_minimum"], id="below"),
        pytest.param(ColumnRule(max=60), ["value_above_maximum"], id="above"),
        pytest.param(ColumnRule(nullable=False), ["column_has_nulls"], id="nulls"),
        pytest.param(ColumnRule(type="integer"), [], id="integer-valued-floats"),
        pytest.param(ColumnRule(type="string"), [], id="any-type-may-be-read-as-string"),
    ],
)
def test_numeric_schema_rules(rule: ColumnRule, checks_found: list[str]) -> None:
    assert [f.check for f in checks.column_violates_schema(FRAME, "age", rule)] == checks_found


def test_categorical_schema_rules() -> None:
    found = checks.column_violates_schema(FRAME, "plan", ColumnRule(categories=("basic", "pro")))
    assert [(f.check, f.observed) for f in found] == [("value_not_in_categories", ["gold"])]
    wrong = checks.column_violates_schema(FRAME, "plan", ColumnRule(type="number"))
    assert wrong[0].check == "column_type_mismatch" and wrong[0].expected == "number"
    assert checks.column_violates_schema(FRAME, "nope", ColumnRule())[0].check == (
        "schema_column_absent"
    )


def test_rows_missing_target_and_constant_columns() -> None:
    assert checks.dataset_rows_below_minimum(FRAME, 4) == []
    assert checks.dataset_rows_below_minimum(FRAME, 5)[0].observed == 4
    assert checks.target_column_absent(FRAME, "label") == []
    assert checks.target_column_absent(FRAME, "churn")[0].column == "churn"
    missing = checks.column_missing_fraction_above_maximum(FRAME, 0.2)
    assert [(f.column, f.observed) for f in missing] == [("age", 0.25)]
    assert [f.column for f in checks.constant_columns(FRAME, ("age", "flag"))] == ["flag"]


def test_constant_columns_warn_unless_the_spec_says_fail() -> None:
    spec = {
        "model": "m",
        "task": "classification",
        "dataset": {"uri": "file:///x", "target": "label"},
    }
    failures, warnings = checks.run_checks(FRAME, parse_spec(spec), "label", ("flag",))
    assert failures == [] and [w.check for w in warnings] == ["column_is_constant"]
    strict = parse_spec(spec | {"validation": {"failOnConstantColumns": True}})
    failures, _ = checks.run_checks(FRAME, strict, "label", ("flag",))
    assert [f.check for f in failures] == ["column_is_constant"]


def test_label_balance_warns_below_five_percent_and_fails_below_the_spec() -> None:
    frame = pd.DataFrame({"label": [0] * 97 + [1] * 3})
    spec = {
        "model": "m",
        "task": "classification",
        "dataset": {"uri": "file:///x", "target": "label"},
    }
    failures, warnings = checks.run_checks(frame, parse_spec(spec), "label", ())
    assert failures == [] and warnings[0].check == "minority_class_fraction_below_minimum"
    strict = parse_spec(spec | {"validation": {"minClassFraction": 0.1}})
    failures, _ = checks.run_checks(frame, strict, "label", ())
    assert failures[0].observed == "class 1: 0.0300" and failures[0].expected == ">= 0.1"
