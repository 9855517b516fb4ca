"""kopf wiring only. Importing this package registers every handler."""

from perennial_operator.handlers import inferenceservice, lifecycle, modelversion, trainingjob

__all__ = ["inferenceservice", "lifecycle", "modelversion", "trainingjob"]
