"""Helpers shared by the test suites (importable as ``support`` via tests/conftest.py)."""
