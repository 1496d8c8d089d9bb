"""Thin root conftest.

The claims harness is a pytest plugin (``harness/plugin.py``), registered through the ``pytest11``
entry point in ``pyproject.toml`` so that its options (``--tier``, ``--cache-dir DIR``...) are known
before pytest parses the command line. Nothing else belongs here: fixtures and hooks live in the
harness.
"""
