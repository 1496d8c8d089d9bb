"""The claim registry and the ``@claim`` decorator that turns a claim function into a pytest test."""
from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

from harness.spec import Claim

REGISTRY: dict[str, Claim] = {}


def register(spec: Claim) -> Claim:
    old = REGISTRY.get(spec.id)
    if old is not None and old.sha256() != spec.sha256():
        raise ValueError(f"two different claims share the id {spec.id!r}")
    REGISTRY[spec.id] = spec
    return spec


def claim(spec: Claim):
    """Decorate ``fn(run, *params)`` returning ``{"main": Evidence, <control>: Evidence}``.

    The result is a pytest test marked ``claims`` (plus ``needs_data`` when any tier needs data,
    and ``slow``). Extra parameters of ``fn`` come from ``@pytest.mark.parametrize`` or fixtures.
    """
    register(spec)

    def deco(fn):
        sig = inspect.signature(fn)
        params = list(sig.parameters.values())
        if not params:
            raise TypeError(f"{fn.__name__}: a claim function takes the claim run as its first argument")
        rest = params[1:]

        def test(claim_run, **kwargs):
            evidence = fn(claim_run, **kwargs)
            claim_run.conclude(evidence)

        test.__name__ = fn.__name__
        test.__qualname__ = fn.__qualname__
        test.__doc__ = fn.__doc__ or spec.finding
        test.__module__ = fn.__module__
        test.__signature__ = inspect.Signature(
            [inspect.Parameter("claim_run", inspect.Parameter.POSITIONAL_OR_KEYWORD)] +
            [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in rest])
        test.__claim_spec__ = spec
        test.pytestmark = list(getattr(fn, "pytestmark", []))
        test = pytest.mark.claims(test)
        test = pytest.mark.slow(test)
        if any(t.data for t in spec.tiers.values()):
            test = pytest.mark.needs_data(test)
        return test

    return deco


def discover(package: str = "claims") -> dict[str, Claim]:
    """Import every claim module under ``package`` and return the registry."""
    pkg = importlib.import_module(package)
    for info in pkgutil.walk_packages(pkg.__path__, package + "."):
        if info.name.rsplit(".", 1)[-1].startswith("test_"):
            importlib.import_module(info.name)
    return dict(REGISTRY)
