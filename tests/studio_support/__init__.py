"""Helpers of the Studio's tests: the Studio as a real process, and a real headless Chromium."""
