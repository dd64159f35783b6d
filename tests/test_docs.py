"""The documentation users read: the file format and the JSON reports are documented where the
README points, every key and quantity is described, the schema matches the real output, and the
tests run without the multi-GB extras."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from symbackprop.derivation import language, loader, model
from symbackprop.model import DOMAINS

from .optional import require

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
FORMAT = ROOT / "docs" / "derivation-files.md"
REPORT = ROOT / "docs" / "report.md"
SCHEMA = ROOT / "docs" / "report.schema.json"


def run(*args):
    return subprocess.run([sys.executable, "-m", "symbackprop", *args], capture_output=True, text=True,
                          timeout=300, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_readme_links_documents_that_ship():
    for document in (FORMAT, REPORT, SCHEMA):
        assert document.is_file()
        assert f"({document.relative_to(ROOT)})" in README, document.name
    assert "SPEC §" not in README


def test_every_key_and_quantity_of_the_file_format_is_documented():
    text = FORMAT.read_text(encoding="utf-8")
    documented = set(re.findall(r"`([\w-]+)", text))
    for keys in (loader.TOP_KEYS, loader.NETWORK_KEYS, loader.CLAIM_KEYS, loader.DEFINE_KEYS, loader.SYMBOL_KEYS,
                 language.QUANTITIES, language.FUNCTIONS, loader.VERDICTS, model.MODEL_KEYS, model.DECLARATION_KEYS,
                 model.FORWARD_KEYS, tuple(DOMAINS)):
        missing = [key for key in keys if key not in documented]
        assert not missing, f"not documented in {FORMAT.name}: {missing}"
    assert 'L = "depth"' in text and 'for = "l in 1..L-1"' in text


def test_the_json_reports_match_the_documented_schema(tmp_path):
    jsonschema = require("jsonschema")
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    broken = tmp_path / "broken.toml"
    broken.write_text("title = 1\n[network]\nwidths = [2, 2]\noutput = 'sigmoid'\nloss = 'half_sse'\ncolour = 1\n[symbols]\nC = 'loss'\nW = 'weight'\n"
                      "[[claim]]\nid = 'S'\nlhs = 'grad(C, W[1])'\nrhs = '-grad(C, W[1])'\n"
                      "[[claim]]\nid = 'R'\nlhs = 'grad(C, W[l])'\nrhs = '2 * grad(C, W[l])'\nfor = 'l in 1..1'\n",
                      encoding="utf-8")
    verified = run("verify", "derivations/001_backpropagation_biswas.toml",
                   "derivations/002_backprop_in_neural_networks.toml", str(broken), str(tmp_path / "none.toml"),
                   "--json")
    report = json.loads(verified.stdout)
    jsonschema.validate(report, schema)
    counterexamples = [c["counterexample"] for f in report["files"] for c in f["claims"] if c["counterexample"]]
    assert len(counterexamples) >= 3 and report["errors"]  # refutations and file errors were checked too
    assert any(c.get("l") == 1 for c in counterexamples)   # the range variable of a claim over layers
    proof = run("prove", "--widths", "2,3,2", "--hidden", "relu", "--output-activation", "softmax", "--loss",
                "cross_entropy", "--general", "--json")
    jsonschema.validate(json.loads(proof.stdout), {"$defs": schema["$defs"], "$ref": "#/$defs/network_proof"})
    for field in schema["$defs"]["counterexample"]["properties"]:
        assert f"`{field}`" in REPORT.read_text(encoding="utf-8"), field


def test_the_test_command_needs_no_pytorch():
    assert 'pip install -e ".[test]" && python -m pytest' in README
    extras = (ROOT / "pyproject.toml").read_text(encoding="utf-8").split("[project.optional-dependencies]")[1]
    test_extra = re.search(r"^test = \[(.*?)\]", extras, flags=re.M).group(1)
    assert "torch" not in test_extra


def test_a_missing_extra_skips_saying_which_to_install_but_fails_in_strict_mode(tmp_path):
    blocked = tmp_path / "blocked"
    (blocked / "torch").mkdir(parents=True)
    (blocked / "torch" / "__init__.py").write_text("raise ImportError('torch is not installed here')\n")
    test = "tests/test_kernels.py::test_gradients_equal_pytorch_autograd"
    environment = {k: v for k, v in os.environ.items() if k != "SYMBACKPROP_REQUIRE_EXTRAS"}
    environment["PYTHONPATH"] = os.pathsep.join([str(blocked), str(ROOT)])
    relaxed = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", test],
                             capture_output=True, text=True, cwd=ROOT, env=environment, timeout=300)
    assert relaxed.returncode == 0, relaxed.stdout[-2000:]
    assert "skipped" in relaxed.stdout and "needs torch, which is not installed (pip install -e '.[torch]')" \
        in relaxed.stdout
    strict = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", test],
                            capture_output=True, text=True, cwd=ROOT, timeout=300,
                            env={**environment, "SYMBACKPROP_REQUIRE_EXTRAS": "1"})
    assert strict.returncode == 1 and "torch is not installed here" in strict.stdout
