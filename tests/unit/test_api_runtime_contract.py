"""The operator mirrors the runtime's exit codes (it may not import the runtime)."""

from __future__ import annotations

import pytest

from perennial_operator.api import runtime_contract as mirrored
from perennial_runtime import contract

pytestmark = pytest.mark.unit


def test_exit_codes_match():
    for name in (
        "EXIT_CRASH",
        "EXIT_BAD_SPEC",
        "EXIT_DATA_INVALID",
        "EXIT_DATASET_UNAVAILABLE",
        "EXIT_BUDGET_TOO_SMALL",
        "PERMANENT_EXIT_CODES",
        "TERMINATION_MESSAGE_PATH",
        "GPUS_ENV",
        "GPU_ALGORITHMS",
    ):
        assert getattr(mirrored, name) == getattr(contract, name), name


def test_every_permanent_exit_code_has_a_reason():
    assert set(mirrored.PERMANENT_FAILURE_REASONS) == set(mirrored.PERMANENT_EXIT_CODES)
