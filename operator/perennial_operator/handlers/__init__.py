"""kopf wiring only. Importing this package registers every handler."""

from perennial_operator.handlers import (
    computepool,
    inferenceservice,
    lifecycle,
    modelversion,
    retrainpolicy,
    trainingjob,
)

__all__ = [
    "computepool",
    "inferenceservice",
    "lifecycle",
    "modelversion",
    "retrainpolicy",
    "trainingjob",
]
