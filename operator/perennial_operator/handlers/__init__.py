"""kopf wiring only. Importing this package registers every handler."""

from perennial_operator.handlers import (
    computepool,
    inferenceservice,
    modelversion,
    retrainpolicy,
    startup,
    trainingjob,
    watches,  # last: its start-up needs what the others' made (tests/unit/test_handlers_watches.py)
)

__all__ = (
    "computepool",
    "inferenceservice",
    "modelversion",
    "retrainpolicy",
    "startup",
    "trainingjob",
    "watches",
)
