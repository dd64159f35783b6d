"""The README's Python examples run as written, and its set-up commands name real commands."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from .optional import require

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
PYTHON_BLOCKS = re.findall(r"```python\n(.*?)```", README, flags=re.S)


def test_readme_has_python_examples():
    assert len(PYTHON_BLOCKS) >= 2


@pytest.mark.parametrize("index", range(len(PYTHON_BLOCKS)))
def test_readme_python_example_runs(index, monkeypatch):
    for engine in ("torch", "jax"):  # an example of the PyTorch / JAX modules needs its extra
        if re.search(rf"^import {engine}\b", PYTHON_BLOCKS[index], flags=re.M):
            require(engine)
    monkeypatch.chdir(Path(__file__).resolve().parent.parent)  # examples use repository paths
    exec(compile(PYTHON_BLOCKS[index], f"README.md python block {index}", "exec"), {})


def test_readme_gives_install_and_test_commands():
    assert "pip install -e . && symbackprop verify derivations/" in README
    assert "python -m pytest" in README
