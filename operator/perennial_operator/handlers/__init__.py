"""kopf wiring only. Importing this package registers every handler."""

from perennial_operator.handlers import lifecycle, modelversion, trainingjob

__all__ = ["lifecycle", "modelversion", "trainingjob"]
