"""The Python API: verify() takes what the command line takes; every result type has a short repr
and a notebook display."""

from __future__ import annotations

import io
import shutil
from collections import Counter
from pathlib import Path

import numpy as np

from symbackprop import NetworkSpec, prove_general, prove_network
from symbackprop.derivation import Report, load, verify
from symbackprop.kernels import build, kernel_proofs
from symbackprop.train import Dataset, train

DERIVATIONS = Path(__file__).resolve().parent.parent / "derivations"
DOC_002 = DERIVATIONS / "002_backprop_in_neural_networks.toml"


def expected_counts(path) -> Counter:
    """The verdicts the transcription expects: the tests follow the file, not a copy of its counts."""
    return Counter(claim.expect for claim in load(path).claims)


def test_verify_accepts_folders_lists_and_stdin(tmp_path):
    shutil.copy(DOC_002, tmp_path / "a.toml")
    (tmp_path / "b.toml").write_text("not = [toml", encoding="utf-8")
    report = verify(tmp_path)
    expected = expected_counts(DOC_002)
    assert isinstance(report, Report) and len(report.files) == 1 and len(report.results) == expected.total()
    assert len(report.errors) == 1 and "b.toml: malformed TOML" in report.errors[0]
    assert not report.as_expected  # a file could not be read
    assert report.to_dict()["summary"] == report.summary and report.to_dict()["errors"] == report.errors
    both = verify([str(DOC_002), tmp_path / "a.toml"])
    assert len(both.files) == 2 and both.summary["proved"] == 2 * expected["proved"]
    piped = verify("-", stdin=io.StringIO(DOC_002.read_text(encoding="utf-8")))
    assert piped.files[0].derivation.path == "<stdin>" and piped.as_expected
    missing = verify(tmp_path / "none.toml")
    assert missing.files == [] and "no such file" in missing.errors[0]


def test_every_result_type_has_a_short_repr_and_a_notebook_display():
    spec = NetworkSpec(widths=(2, 3, 2), hidden="tanh", output="softmax", loss="cross_entropy", batch=2)
    proof = prove_network(spec)
    general = prove_general(spec)
    report, expected = verify(DOC_002), expected_counts(DOC_002)
    results = [proof, proof.results[0], proof.results[0].verdict, proof.lemmas[0], general, general.lemmas[0],
               report, report.files[0], report.results[0]]
    for result in results:
        text = repr(result)
        assert len(text) < 200 and text.startswith("<") and "\n" not in text, text
        assert result._repr_latex_().startswith("$"), type(result).__name__
    assert "proved" in repr(proof.results[0]) and f"{expected['proved']} proved, {expected['ill-formed']} ill-formed" in repr(report)
    assert r"\partial J/\partial z^{(2)}" in proof.results[0]._repr_latex_()
    assert r"\textbf{proved}" in general._repr_latex_() and "hidden step" in general._repr_latex_()
    others = [report.files[0].derivation, kernel_proofs(NetworkSpec(widths=(2, 2)), timeout=30)]
    kernel = build(NetworkSpec(widths=(2, 2), layout="rows"))
    X = np.zeros((4, 2))
    trained = train(kernel, Dataset("d", X, np.zeros((4, 2)), X[:0], X[:0], False), epochs=2, batch=2)
    for result in others + [kernel, trained]:
        assert len(repr(result)) < 200 and "\n" not in repr(result), repr(result)[:300]
