"""Helpers for tests and benchmarks: classes, functions and constants they import.

Fixtures live in tests/fixtures/ (pytest plugins listed in tests/conftest.py); everything a
test imports by name comes from here. Modules here never import from ``fixtures``.
"""
