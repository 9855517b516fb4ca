"""Helpers for the perennial-serve tests: model directories and a server subprocess."""
