"""The command line: tables, JSON, exit codes and one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from symbackprop.cli import main


def run(*args):
    return subprocess.run([sys.executable, "-m", "symbackprop", *args], capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("hidden,output,loss", [
    ("sigmoid", "sigmoid", "half_sse"), ("relu", "softmax", "cross_entropy"),
    ("tanh", "sigmoid", "bce"), ("sigmoid", "identity", "half_sse"),
])
def test_prove_json_reports_every_quantity_proved(hidden, output, loss):
    result = run("prove", "--widths", "3,4,2", "--hidden", hidden, "--output-activation", output, "--loss", loss,
                 "--batch", "2", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["all_proved"] is True
    assert len(report["results"]) == 6
    assert {r["verdict"] for r in report["results"]} == {"proved"}
    assert {(r["quantity"], r["layer"]) for r in report["results"]} == {
        (q, k) for q in ("∂J/∂z", "∂J/∂W", "∂J/∂b") for k in (1, 2)}
    assert all(l["verdict"] == "proved" for l in report["lemmas"])


def test_prove_table(capsys):
    assert main(["prove", "--widths", "2,3,2", "--hidden", "relu", "--output-activation", "sigmoid"]) == 0
    out = capsys.readouterr().out
    assert "all 6 gradients proved" in out
    assert "exactly 0" in out  # the ReLU kink is stated


@pytest.mark.parametrize("args,fragment", [
    (["prove", "--widths", "3,x"], "comma-separated integers"),
    (["prove", "--widths", "3,4", "--hidden", "foo"], "unknown activation 'foo'"),
    (["prove", "--widths", "3,4", "--output-activation", "tanh", "--loss", "bce"], "outputs in (0, 1)"),
    (["prove", "--widths", "3,4", "--loss", "hinge"], "invalid choice"),
    (["prove"], "required"),
    (["prove", "--widths", "3,4", "--timeout", "-1"], "positive number of seconds"),
    (["nonsense"], "invalid choice"),
])
def test_bad_arguments_exit_2_with_one_line(args, fragment):
    result = run(*args)
    assert result.returncode == 2
    assert fragment in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_every_command_has_help():
    for args in (["--help"], ["prove", "--help"]):
        result = run(*args)
        assert result.returncode == 0 and "usage" in result.stdout


def test_extract_then_verify_reports_the_delta3_erratum_of_seed_002(tmp_path, capsys, monkeypatch):
    from pathlib import Path

    (seed,) = (Path(__file__).parent / "data" / "seeds").glob("002_*.txt")
    monkeypatch.chdir(tmp_path)
    assert main(["extract", str(seed), "-o", "draft.toml"]) == 0
    assert "guess:" in capsys.readouterr().err
    code = main(["verify", "--json", "draft.toml"])
    report = json.loads(capsys.readouterr().out)
    assert len(report["files"]) == 1 and code == 1
    text = json.dumps(report)
    assert "delta[3] is not defined" in text
    assert '"proved"' in text


def test_verify_a_document_prints_its_guesses_and_symbols_override(tmp_path, capsys):
    from pathlib import Path

    (seed,) = (Path(__file__).parent / "data" / "seeds").glob("002_*.txt")
    code = main(["verify", "-q", str(seed)])
    out = capsys.readouterr().out
    assert code == 1 and "guess: widths [3, 4, 2]" not in out  # -q: summary only
    mine = tmp_path / "mine.toml"
    mine.write_text('[network]\nwidths = [3, 5, 2]\nhidden = "sigmoid"\noutput = "sigmoid"\n'
                    'loss = "half_sse"\nbatch = 1\n')
    main(["verify", str(seed), "--symbols", str(mine)])
    out = capsys.readouterr().out
    assert f"{mine}: overrides [network] widths" in out and "3-5-2" in out


def test_extract_errors_are_one_line(tmp_path, capsys):
    assert main(["extract", str(tmp_path / "none.md")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "none.md: cannot read" in err
    bad = tmp_path / "bad.tex"
    bad.write_text("ok\n  $a = b\n")
    assert main(["extract", str(bad)]) == 2
    assert "bad.tex:2:3: $ is never closed by $" in capsys.readouterr().err


def test_a_document_without_formulas_is_nothing_to_verify(tmp_path, capsys):
    empty = tmp_path / "empty.md"
    empty.write_text("# No math here\n")
    assert main(["verify", str(empty)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "empty.md: nothing to verify" in err
