"""The runtime's exit codes and result format, mirrored here because the operator may not
import the runtime (import-linter). tests/unit/test_api_runtime_contract.py keeps both equal.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Final

from perennial_operator.api import conditions

TERMINATION_MESSAGE_PATH: Final = "/dev/termination-log"

# How many GPUs the pod was given (set with its nvidia.com/gpu request); XGBoost uses them.
GPUS_ENV: Final = "PERENNIAL_GPUS"
# The built-in algorithms that can use a GPU: only their pods ask for one.
GPU_ALGORITHMS: Final = frozenset({"xgboost"})

EXIT_CRASH: Final = 1
EXIT_BAD_SPEC: Final = 2
EXIT_DATA_INVALID: Final = 3
EXIT_DATASET_UNAVAILABLE: Final = 4
EXIT_BUDGET_TOO_SMALL: Final = 5

PERMANENT_EXIT_CODES: Final = frozenset(
    {EXIT_BAD_SPEC, EXIT_DATA_INVALID, EXIT_DATASET_UNAVAILABLE, EXIT_BUDGET_TOO_SMALL}
)

# Exit code -> the reason the TrainingJob fails with (none of these is retried).
PERMANENT_FAILURE_REASONS: Final = MappingProxyType(
    {
        EXIT_BAD_SPEC: conditions.BAD_SPEC,
        EXIT_DATA_INVALID: conditions.DATA_VALIDATION_FAILED,
        EXIT_DATASET_UNAVAILABLE: conditions.DATASET_UNAVAILABLE,
        EXIT_BUDGET_TOO_SMALL: conditions.BUDGET_TOO_SMALL,
    }
)
