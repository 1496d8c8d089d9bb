"""Thin root conftest: the claims harness is a pytest plugin (harness/plugin.py)."""
pytest_plugins = ("harness.plugin",)
