"""perennial-serve: the model server every InferenceService pod runs.

Public surface: ``perennial_runtime.serve.cli.main`` (the console script). Everything
else is private to the package.
"""
