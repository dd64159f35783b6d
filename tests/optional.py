"""Optional dependencies in tests: skipped on a developer's machine without them, but a failure in CI.

``.ci/run`` installs the extras and sets ``SYMBACKPROP_REQUIRE_EXTRAS=1``; a missing package is then
an error, so a broken install cannot hide behind a skip.
"""

from __future__ import annotations

import importlib
import os

import pytest


def require(module: str):
    """Import ``module``; skip when it is missing, unless CI requires the extras."""
    if os.environ.get("SYMBACKPROP_REQUIRE_EXTRAS") == "1":
        return importlib.import_module(module)
    return pytest.importorskip(module)
