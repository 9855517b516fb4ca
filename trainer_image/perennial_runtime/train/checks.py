"""Data checks, run before training ("CI for data").

Each check is a pure function named like the sentence it proves, returning the failures it
found (an empty list when the data is fine). ``run_checks`` splits them into failures and
warnings according to the spec.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from perennial_runtime.train.algorithms import CLASSIFICATION_TASKS
from perennial_runtime.train.errors import Failure
from perennial_runtime.train.spec import ColumnRule, TrainingJob, Validation

LABEL_BALANCE_WARNING = 0.05
_MAX_EXAMPLES = 3


def target_column_absent(frame: pd.DataFrame, target: str | None) -> list[Failure]:
    if target is None or target in frame.columns:
        return []
    return [Failure("target_column_absent", target, "absent", f"one of {list(frame.columns)[:20]}")]


def dataset_rows_below_minimum(frame: pd.DataFrame, minimum: int) -> list[Failure]:
    if len(frame) >= minimum:
        return []
    return [Failure("dataset_rows_below_minimum", None, len(frame), f">= {minimum}")]


def column_missing_fraction_above_maximum(frame: pd.DataFrame, maximum: float) -> list[Failure]:
    fractions = frame.isna().mean()
    return [
        Failure(
            "column_missing_fraction_above_maximum", str(name), round(float(f), 4), f"<= {maximum}"
        )
        for name, f in fractions.items()
        if f > maximum
    ]


def column_violates_schema(frame: pd.DataFrame, name: str, rule: ColumnRule) -> list[Failure]:
    if name not in frame.columns:
        return [Failure("schema_column_absent", name, "absent", "present")]
    column = frame[name]
    present = column.dropna()
    failures = []
    if not rule.nullable and len(present) < len(column):
        failures.append(Failure("column_has_nulls", name, int(len(column) - len(present)), 0))
    failures += _type_failures(name, present, rule)
    if rule.categories is not None:
        allowed = {str(c) for c in rule.categories}
        bad = sorted({str(v) for v in present.tolist()} - allowed)
        if bad:
            failures.append(
                Failure("value_not_in_categories", name, bad[:_MAX_EXAMPLES], list(rule.categories))
            )
    return failures


def _type_failures(name: str, present: pd.Series, rule: ColumnRule) -> list[Failure]:
    numeric = pd.api.types.is_numeric_dtype(present) and not pd.api.types.is_bool_dtype(present)
    if rule.type in ("number", "integer") and not numeric:
        return [Failure("column_type_mismatch", name, str(present.dtype), rule.type)]
    if rule.type == "integer" and not (present == present.round()).all():
        return [Failure("column_type_mismatch", name, "fractional values", "integer")]
    if rule.type == "boolean" and not set(present.tolist()) <= {
        True,
        False,
    }:  # 0 and 1 compare equal to these
        return [Failure("column_type_mismatch", name, str(present.dtype), "boolean")]
    failures = []
    if numeric and rule.min is not None and len(present) and present.min() < rule.min:
        failures.append(Failure("value_below_minimum", name, _num(present.min()), f">= {rule.min}"))
    if numeric and rule.max is not None and len(present) and present.max() > rule.max:
        failures.append(Failure("value_above_maximum", name, _num(present.max()), f"<= {rule.max}"))
    return failures


def constant_columns(frame: pd.DataFrame, features: tuple[str, ...]) -> list[Failure]:
    return [
        Failure("column_is_constant", name, f"{frame[name].nunique(dropna=False)} distinct", ">= 2")
        for name in features
        if name in frame.columns and frame[name].nunique(dropna=False) < 2
    ]


def minority_class_fraction_below(
    frame: pd.DataFrame, target: str, minimum: float
) -> list[Failure]:
    fractions = frame[target].value_counts(normalize=True)
    if len(fractions) < 2:
        return [Failure("target_has_one_class", target, len(fractions), ">= 2 classes")]
    smallest = fractions.idxmin()
    if fractions.min() >= minimum:
        return []
    observed = f"class {smallest}: {fractions.min():.4f}"
    return [Failure("minority_class_fraction_below_minimum", target, observed, f">= {minimum}")]


def run_checks(
    frame: pd.DataFrame, job: TrainingJob, target: str | None, features: tuple[str, ...]
) -> tuple[list[Failure], list[Failure]]:
    """All checks the spec asks for: (failures that stop the job, warnings only)."""
    rules: Validation = job.validation
    failures = target_column_absent(frame, target)
    failures += dataset_rows_below_minimum(frame, rules.min_rows)
    failures += column_missing_fraction_above_maximum(frame, rules.max_missing_fraction)
    for name, rule in rules.schema.items():
        failures += column_violates_schema(frame, name, rule)
    constant = constant_columns(frame, features)
    warnings = [] if rules.fail_on_constant_columns else constant
    failures += constant if rules.fail_on_constant_columns else []
    if target in frame.columns and job.task in CLASSIFICATION_TASKS:
        balance = minority_class_fraction_below(frame, str(target), rules.min_class_fraction)
        failures += balance
        if not balance:
            warnings += minority_class_fraction_below(frame, str(target), LABEL_BALANCE_WARNING)
    return failures, warnings


def _num(value: Any) -> float:
    return round(float(value), 6)
