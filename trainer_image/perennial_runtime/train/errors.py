"""Failures the trainer reports, each with its exit code and termination-message outcome."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from perennial_runtime import contract


@dataclass(frozen=True)
class Failure:
    """One failing data check: which check, which column, what we saw, what we wanted."""

    check: str
    column: str | None
    observed: Any
    expected: Any

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def sentence(self) -> str:
        where = f" in column {self.column!r}" if self.column else ""
        return f"{self.check}{where}: observed {self.observed!r}, expected {self.expected!r}"


class TrainError(Exception):
    """A failure the operator must see as permanent (or a crash, for the base case)."""

    outcome = "Crashed"
    exit_code = contract.EXIT_CRASH

    def __init__(self, message: str, failures: list[Failure] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.failures = failures or []


class BadSpec(TrainError):
    outcome = "BadSpec"
    exit_code = contract.EXIT_BAD_SPEC


class DataInvalid(TrainError):
    outcome = "DataInvalid"
    exit_code = contract.EXIT_DATA_INVALID


class DatasetUnavailable(TrainError):
    outcome = "DatasetUnavailable"
    exit_code = contract.EXIT_DATASET_UNAVAILABLE


class BudgetTooSmall(TrainError):
    outcome = "BudgetTooSmall"
    exit_code = contract.EXIT_BUDGET_TOO_SMALL
