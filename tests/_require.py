"""Skips for optional dependencies that CI must not silently skip.

``.ci/run`` exports ``GASP_REQUIRE_ALL=1``: a test that is meant to run in CI (verl's CPU parts,
Ray, the report's headless browser) then FAILS when its dependency is missing instead of skipping,
so a broken install can never leave CI green with those tests unrun.  Without the variable these
helpers skip with the reason, as ``pytest.importorskip`` / ``pytest.skip`` do.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

import pytest

ENV = "GASP_REQUIRE_ALL"


def require_all() -> bool:
    return os.environ.get(ENV, "") not in ("", "0")


def missing(reason: str) -> None:
    """Skip (or, under GASP_REQUIRE_ALL, fail) with ``reason``; works at module level too."""
    if require_all():
        pytest.fail(f"{ENV}=1 and a required test dependency is missing: {reason}", pytrace=False)
    pytest.skip(reason, allow_module_level=True)


def importorskip(modname: str, reason: str) -> ModuleType:
    try:
        return importlib.import_module(modname)
    except ImportError as exc:
        missing(f"{reason} ({exc})")
        raise  # unreachable: missing() always raises
