"""kopf wiring only. Importing this package registers every handler."""

from perennial_operator.handlers import (
    computepool,
    inferenceservice,
    modelversion,
    retrainpolicy,
    startup,
    trainingjob,
)

__all__ = (
    "computepool",
    "inferenceservice",
    "modelversion",
    "retrainpolicy",
    "startup",
    "trainingjob",
)
