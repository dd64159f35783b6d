"""Optional dependencies in tests: skipped on a developer's machine without them, but a failure in CI.

``.ci/run`` installs the extras and sets ``SYMBACKPROP_REQUIRE_EXTRAS=1``; a missing package is then
an error, so a broken install cannot hide behind a skip.  A skip says which extra brings the package.
"""

from __future__ import annotations

import importlib
import os

import pytest

EXTRAS = {"torch": "torch", "jax": "jax", "sklearn": "train", "matplotlib": "train", "scipy": "train", "hypothesis": "testing",
          "jsonschema": "test"}


def require(module: str):
    """Import ``module``; skip when it is missing (naming the extra to install), unless CI requires
    the extras."""
    if os.environ.get("SYMBACKPROP_REQUIRE_EXTRAS") == "1":
        return importlib.import_module(module)
    extra = EXTRAS.get(module.split(".")[0])
    hint = f"pip install -e '.[{extra}]'" if extra else f"pip install {module}"
    try:  # pytest.importorskip's handling of a plain ImportError changes between pytest versions
        return importlib.import_module(module)
    except ImportError:
        pytest.skip(f"needs {module}, which is not installed ({hint})")
