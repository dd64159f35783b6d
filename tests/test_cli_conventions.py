"""The command line's conventions: help that tells the defaults really used, output that fits the
terminal, the usual flags (--version, -q, -v, -, --json everywhere), one error prefix, train's
epochs as they finish."""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from rich.cells import cell_len

from symbackprop import cli, train
from symbackprop.cli import main
from symbackprop.derivation import load

ROOT = Path(__file__).resolve().parent.parent
DERIVATIONS = ROOT / "derivations"
DOC_002 = DERIVATIONS / "002_backprop_in_neural_networks.toml"
COMMANDS = ("prove", "verify", "export", "train")


def run(*args, env=None, stdin=None):
    environment = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run([sys.executable, "-m", "symbackprop", *args], capture_output=True, text=True,
                          timeout=300, cwd=ROOT, env=environment, input=stdin)


def help_text(capsys, *command, raw=False) -> str:
    with pytest.raises(SystemExit) as stop:
        main([*command, "--help"])
    assert stop.value.code == 0
    out = capsys.readouterr().out
    return out if raw else " ".join(out.split())  # argparse wraps: compare with spaces collapsed


def option_help(raw: str) -> dict:
    """option string → its help text (argparse's wrapped block, joined)."""
    blocks, current = {}, None
    for line in raw.splitlines():
        if re.match(r"^  -", line):
            current = " ".join(line.split())
            last = re.findall(r"(?:^|, )(--?[\w-]+)", line.strip())
            for name in last:
                blocks[name] = current
        elif current is not None and line.startswith("   "):
            current += " " + " ".join(line.split())
            for name in last:
                blocks[name] = current
        else:
            current = None
    return blocks


def csv(tmp_path, lines=40) -> str:
    path = tmp_path / "points.csv"
    path.write_text("".join(f"{i % 7 / 7:.3f},{i % 5 / 5:.3f},{i % 2}\n" for i in range(lines)), encoding="utf-8")
    return str(path)


# ----------------------------------------------------------------------------- 1. honest help


class Captured(Exception):
    pass


def captured_spec(monkeypatch, command, tmp_path):
    """The NetworkSpec a command really builds from its defaults (the work itself is cut short)."""
    seen = {}

    def capture(spec, *args, **kwargs):
        seen["spec"] = spec
        raise Captured

    monkeypatch.setattr("symbackprop.general.prove_instance", capture)
    monkeypatch.setattr("symbackprop.kernels.kernel_proofs", capture)
    monkeypatch.setattr("symbackprop.kernels.build", capture)
    argv = {"prove": ["prove", "--widths", "2,4,2"],
            "export": ["export", "--widths", "2,4,2", "-o", str(tmp_path / "k.py")],
            "train": ["train", "--widths", "2,4,2", "--data", csv(tmp_path)]}[command]
    with pytest.raises(Captured):
        main(argv)
    return seen["spec"]


@pytest.mark.parametrize("command", ["prove", "export", "train"])
def test_help_states_the_network_defaults_the_command_uses(command, capsys, monkeypatch, tmp_path):
    blocks = option_help(help_text(capsys, command, raw=True))
    stated = {}
    for field, option in (("hidden", "--hidden"), ("output", "--output-activation"), ("loss", "--loss"),
                          ("batch", "--batch"), ("reduction", "--reduction"), ("layout", "--layout"),
                          ("relu_at_zero", "--relu-at-zero")):
        match = re.search(r"\(default: ([^)\s]+)\)", blocks[option])
        assert match, f"{command} --help does not state the default of {option}"
        stated[field] = match.group(1)
    spec = captured_spec(monkeypatch, command, tmp_path)
    assert {field: str(getattr(spec, field)) for field in stated} == stated


def test_train_defaults_are_the_documented_ones(capsys, monkeypatch, tmp_path):
    spec = captured_spec(monkeypatch, "train", tmp_path)
    assert (spec.hidden, spec.output, spec.loss, spec.batch, spec.layout) == \
        ("relu", "softmax", "cross_entropy", 32, "rows")


@pytest.mark.parametrize("command", COMMANDS)
def test_every_option_default_in_the_help_is_the_parsed_one(command, capsys):
    text = help_text(capsys, command)
    parser = next(a for a in cli.build_parser()._actions if a.dest == "command").choices[command]
    for action in parser._actions:
        if not action.option_strings or action.help == "==SUPPRESS==" or action.default is None or action.default is False \
                or action.default == argparse.SUPPRESS:
            continue
        assert f"(default: {action.default})" in text, (command, action.option_strings)


def test_export_describes_the_layout_it_uses(capsys):
    raw = help_text(capsys, "export", raw=True)
    assert "By default the kernel takes examples as rows" in " ".join(raw.split())
    assert option_help(raw)["--layout"].endswith("(default: rows)")


# ------------------------------------------------------------------------ 5. fits the terminal


def table_rows(output: str) -> dict:
    """Per file: the lines of its claim table (header excluded)."""
    tables, current, rows = {}, None, None
    for line in output.splitlines():
        if line.startswith("derivations/"):
            current = line.split(" ")[0]
        elif line.startswith("id  ") and "claim (as printed)" in line:
            rows = tables.setdefault(current, [])
        elif rows is not None:
            if not line.strip() or re.fullmatch(r"\S+:", line):
                rows = None
            else:
                rows.append(line)
    return tables


def test_verify_at_80_columns_has_no_wrapped_rows():
    result = run("verify", "derivations/", env={"COLUMNS": "80"})
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert max(cell_len(line) for line in lines) <= 80
    tables = table_rows(result.stdout)
    assert len(tables) == len(list((ROOT / "derivations").glob("*.toml")))
    for path, rows in tables.items():
        ids = [claim.id for claim in load(ROOT / path).claims]
        assert [row.split()[0] for row in rows] == ids  # one line per claim, in order
    assert any("…" in row for rows in tables.values() for row in rows)  # long claims elided
    checked = [i for i, line in enumerate(lines) if line.startswith("checked on:")]
    assert any(lines[i + 1].startswith("  ") and lines[i + 1].strip() for i in checked)  # the list wraps


def test_verdict_colours_follow_no_color_and_force_color():
    plain = run("verify", str(DOC_002), env={"NO_COLOR": "1"})
    coloured = run("verify", str(DOC_002), env={"FORCE_COLOR": "1"})
    assert "\x1b[" not in plain.stdout
    assert "\x1b[" in coloured.stdout and "proved" in coloured.stdout
    def words(text):  # the same report, the seconds aside
        return re.sub(r"\d+\.\d\d\b", "", re.sub(r"\x1b\[[0-9;]*m", "", text)).split()

    assert words(coloured.stdout) == words(plain.stdout)


# ------------------------------------------------------------------------- 6. CLI conventions


def test_version():
    from symbackprop import __version__

    result = run("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"symbackprop {__version__}"


def test_bare_command_prints_usage_on_stderr():
    result = run()
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith("usage: symbackprop") and "a command is needed" in result.stderr


def test_mistyped_subcommand_suggests_the_right_one():
    result = run("verfy", "x.toml")
    assert result.returncode == 2 and "did you mean 'verify'?" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("command", [(), *((c,) for c in COMMANDS)])
def test_every_help_has_examples(command, capsys):
    text = help_text(capsys, *command)
    assert "examples: symbackprop" in text


def test_verify_reads_standard_input():
    result = run("verify", "-", stdin=DOC_002.read_text(encoding="utf-8"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("<stdin> — Backpropagation in Neural Networks")
    assert "every verdict as expected" in result.stdout


def test_latex_dash_writes_standard_output():
    result = run("verify", str(DOC_002), "--latex", "-")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("\\documentclass") and "claim (as printed)" not in result.stdout


def test_output_activation_flag_and_the_deprecated_spelling(tmp_path):
    new = run("prove", "--widths", "2,2", "--output-activation", "tanh", "--json")
    old = run("prove", "--widths", "2,2", "--output", "tanh", "--json")
    assert new.returncode == old.returncode == 0
    assert json.loads(new.stdout)["network"]["output"] == json.loads(old.stdout)["network"]["output"] == "tanh"
    assert new.stderr == "" and "deprecated" in old.stderr and old.stderr.startswith("symbackprop: warning:")
    kernel = tmp_path / "kernel.py"
    written = run("export", "--widths", "2,2", "--output", str(kernel))  # the universal meaning
    assert written.returncode == 0, written.stderr
    assert kernel.read_text(encoding="utf-8").startswith('"""')


def test_every_subcommand_prints_json(tmp_path):
    reports = [run("prove", "--widths", "2,2", "--json"), run("verify", str(DOC_002), "--json"),
               run("export", "--widths", "2,2", "-o", str(tmp_path / "k.py"), "--json"),
               run("train", "--widths", "2,4,2", "--data", csv(tmp_path), "--epochs", "2", "--json")]
    for result in reports:
        assert result.returncode == 0, result.stderr
        assert isinstance(json.loads(result.stdout), dict)
    trained = json.loads(reports[3].stdout)
    assert [e["epoch"] for e in trained["epochs"]] == [1, 2] and trained["stopped"] is None


@pytest.mark.parametrize("args", [["prove", "--widths", "3,x"], ["verify", "no/such.toml"],
                                  ["export", "--widths", "2,2"], ["train", "--widths", "2,2"],
                                  ["prove", "--widths", "2,2", "--hidden", "foo"], ["nonsense"]])
def test_one_error_prefix(args):
    result = run(*args)
    assert result.returncode == 2
    assert all(line.startswith("symbackprop: ") for line in result.stderr.strip().splitlines()), result.stderr


def test_verify_of_a_missing_file_does_not_claim_success():
    result = run("verify", "no/such.toml")
    assert result.returncode == 2 and "no such file" in result.stderr
    assert "every verdict as expected" not in result.stdout


def test_prove_general_needs_no_widths():
    result = run("prove", "--general", "--hidden", "tanh", "--output-activation", "sigmoid", "--loss", "bce",
                 "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert set(report) == {"general"} and report["general"]["all_proved"]
    assert run("prove").returncode == 2  # an instance proof still needs its widths


def test_quiet_and_verbose(tmp_path):
    quiet = run("verify", str(DOC_002), "-q")
    expect = Counter(claim.expect for claim in load(DOC_002).claims)
    assert quiet.returncode == 0 and quiet.stdout.strip().splitlines() == [
        f"1 file, {expect.total()} claims: {expect['proved']} proved, 0 refuted, {expect['ill-formed']} ill-formed, "
        "0 undecided — every verdict as expected"]
    before = run("-q", "prove", "--widths", "2,2")
    assert before.returncode == 0 and len(before.stdout.strip().splitlines()) == 1
    verbose = run("verify", str(DOC_002), "-v")
    assert "proved: exact: rational normal form" in verbose.stdout


# ---------------------------------------------------------------------------------- 7. train


def test_train_prints_each_epoch_as_it_ends_and_keeps_them_on_ctrl_c(tmp_path, capsys, monkeypatch):
    evaluate = train.evaluate

    def interrupted_in_epoch_3(kernel, params, X, Y, X_test, Y_test, classification, epoch=0, seconds=0.0):
        if epoch == 3:
            raise KeyboardInterrupt
        return evaluate(kernel, params, X, Y, X_test, Y_test, classification, epoch, seconds)

    monkeypatch.setattr(train, "evaluate", interrupted_in_epoch_3)
    assert main(["train", "--widths", "2,4,2", "--data", csv(tmp_path), "--epochs", "10"]) == 130
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[1].split() == ["epoch", "loss", "test", "loss", "train", "acc", "test", "acc", "elapsed", "s"]
    assert [line.split()[0] for line in lines[2:]] == ["1", "2"]
    assert "interrupted after 2 of 10 epochs" in err


def test_train_checks_matplotlib_before_training(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import fails as if not installed
    monkeypatch.setattr(train, "train", lambda *a, **k: pytest.fail("trained before checking --plot"))
    assert main(["train", "--widths", "2,4,2", "--data", csv(tmp_path), "--plot", str(tmp_path / "c.png")]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("symbackprop: --plot needs matplotlib")


def test_train_timeout_stops_and_keeps_the_epochs(tmp_path, capsys):
    assert main(["train", "--widths", "2,4,2", "--data", csv(tmp_path, 2000), "--epochs", "100000",
                 "--batch", "1", "--timeout", "0.2"]) == 0
    out, err = capsys.readouterr()
    rows = out.splitlines()[2:]
    assert 1 <= len(rows) < 100000
    assert "stopped at the 0.2 s time limit after" in err
    assert float(rows[-1].split()[-1]) >= 0.2 - 1e-9  # the elapsed column is cumulative
