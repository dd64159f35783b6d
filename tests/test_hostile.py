"""Hostile and malformed input, in process: every case ends in a one-line error (exit 2) or a
verdict, within a small budget — never a traceback, a MemoryError, a hang or a run past the budget.

Each case names a fragment its output must contain: the limit or the problem, said in words.
"""

from __future__ import annotations

import _thread
import os
import textwrap
import threading

import pytest

from symbackprop import limits
from symbackprop.cli import main

WATCHDOG = 240.0  # seconds: far beyond any case's budget, so only a hang trips it (the machine is shared)

DOCUMENT = """
title = "hostile"
[network]
widths = [2, 3, 2]
hidden = "sigmoid"
output = "sigmoid"
loss = "half_sse"
batch = 1
[symbols]
W = "weight"
b = "bias"
z = "preactivation"
a = "activation"
x = "input"
t = "target"
C = "loss"
L = "depth"
sigma = "activation_function"
"""


def claim(lhs: str, rhs: str, extra: str = "") -> str:
    return DOCUMENT + f"[[claim]]\nid = \"H\"\nlhs = '''{lhs}'''\nrhs = '''{rhs}'''\n{extra}\n" + \
        "[[claim]]\nid = \"OK\"\nlhs = \"z[1]\"\nrhs = \"W[1] @ a[0] + b[1]\"\n"


def network(body: str) -> str:
    return DOCUMENT.replace('widths = [2, 3, 2]\nhidden = "sigmoid"\noutput = "sigmoid"\nloss = "half_sse"\n'
                            'batch = 1\n', textwrap.dedent(body))


MODEL = """
title = "hostile model"
[model]
sizes = { N = 4, D = 2 }
loss = "L"
[model.inputs]
x = "N x D"
"h[0]" = "D"
[model.parameters]
w = "D"
[model.forward]
L = "sum(x @ w)"
"""


def model(forward: str = "", sizes: str = "sizes = { N = 4, D = 2 }", claim_rhs: str = "sum(x @ w)") -> str:
    body = MODEL.replace("sizes = { N = 4, D = 2 }", sizes).replace('L = "sum(x @ w)"', forward or 'L = "sum(x @ w)"')
    return body + f"[[claim]]\nid = \"M\"\nlhs = \"L\"\nrhs = '''{claim_rhs}'''\n"


# (id, what the case writes or runs, a fragment the output must contain)
# A derivation body is written to doc.toml and verified with --timeout 2.
VERIFY_CASES = [
    ("500 nested unary minus", claim("z[1]", "-" * 500 + "z[1]"), f"at most {limits.MAX_NESTING} levels"),
    ("20 000-term sum", claim("z[1]", " + ".join(["z[1]"] * 20_000)), "formula too long"),
    ("200-term sum", claim("z[1]", " + ".join(["z[1]"] * 200)), f"at most {limits.MAX_NESTING} levels"),
    ("300 nested parentheses", claim("z[1]", "(" * 300 + "z[1]" + ")" * 300), "nested too deeply"),
    ("200 layers", network(f"widths = {[1] * 201}\nhidden = \"sigmoid\"\noutput = \"sigmoid\"\nloss = \"half_sse\"\n"),
     f"at most {limits.MAX_DEPTH} layers"),
    ("30 layers of width 1", network(f"widths = {[1] * 31}\nhidden = \"sigmoid\"\noutput = \"sigmoid\"\n"
                                     "loss = \"half_sse\"\n"), f"at most {limits.MAX_SYMBOLIC_DEPTH} layers"),
    ("width 100000", network("widths = [100000, 1]\noutput = \"sigmoid\"\nloss = \"half_sse\"\n"),
     "too large to check"),
    ("batch 10**9", network("widths = [2, 2]\noutput = \"sigmoid\"\nloss = \"half_sse\"\nbatch = 1000000000\n"),
     f"a batch of at most {limits.MAX_BATCH} examples"),
    ("batch inf", network("widths = [2, 2]\noutput = \"sigmoid\"\nloss = \"half_sse\"\nbatch = inf\n"),
     "batch must be an integer"),
    ("widths with a bool", network("widths = [2, true]\noutput = \"sigmoid\"\nloss = \"half_sse\"\n"),
     "widths must be integers"),
    ("widths as a string", network("widths = \"2,3\"\noutput = \"sigmoid\"\nloss = \"half_sse\"\n"),
     "widths must be a list of integers"),
    ("hidden as a number", network("widths = [2, 3, 2]\nhidden = 5\noutput = \"sigmoid\"\nloss = \"half_sse\"\n"),
     "must be a name"),
    ("loss as a table", network("widths = [2, 2]\noutput = \"sigmoid\"\n[network.loss]\n"), "must be a name"),
    ("relu_at_zero with 5000 digits", network("widths = [2, 2]\noutput = \"relu\"\nloss = \"half_sse\"\n"
                                              f"relu_at_zero = \"1e5000\"\n"), "at most 100 digits"),
    ("range to 10**9", claim("z[l]", "W[l] @ a[l-1] + b[l]", 'for = "l in 1..10**9"'), "not an integer expression"),
    ("range of a billion layers", claim("z[l]", "W[l] @ a[l-1] + b[l]", 'for = "l in 1..1000000000"'),
     f"at most {limits.MAX_RANGE}"),
    ("range given as an integer", claim("z[l]", "W[l] @ a[l-1] + b[l]", "for = 3"),
     "a range is a string like 'l in 1..L-1'"),
    ("definition range as an integer", DOCUMENT + '[define]\n"d[l]" = { expr = "z[l]", for = 2 }\n'
     '[[claim]]\nid = "D"\nlhs = "d[1]"\nrhs = "z[1]"\n', "a range is a string"),
    ("definition over a billion layers", DOCUMENT + '[define]\n"d[l]" = { expr = "z[l]", for = "l in 1..1000000000" }\n'
     '[[claim]]\nid = "D"\nlhs = "d[0]"\nrhs = "z[1]"\n', "(defined: d[1] … d[1000000000])"),
    ("2**2**2**2**2", claim("C", "2**2**2**2**2"), f"at most {limits.MAX_EXPONENT} in absolute value"),
    ("2**2**2**2**2**2", claim("C", "2**2**2**2**2**2"), f"at most {limits.MAX_EXPONENT} in absolute value"),
    ("(10**64)**64", claim("C", "(10**64)**64"), f"more than {limits.MAX_NUMBER_DIGITS} digits"),
    ("a number of 200 digits", claim("C", "1" * 200), f"at most {limits.MAX_NUMBER_DIGITS} digits"),
    ("inf as a literal", claim("C", "1e999 * C"), "1e999 is not a finite number"),
    ("inf as a name", claim("C", "inf * C"), "inf is not defined"),
    ("ones of a billion", claim("C", "sum(ones(1000000000))"), f"from 1 to {limits.MAX_ENTRIES}"),
    ("three letter indices", claim("W[1][i, j, k]", "W[1][i, j]"), "an entry takes one or two"),
    ("three indices in a definition", DOCUMENT + '[define]\n"T[i, j, k]" = "W[1][i, j]"\n'
     '[[claim]]\nid = "T"\nlhs = "C"\nrhs = "C"\n', "an entry takes one or two indices, not 3"),
    ("a prime after a subscript", claim("a[1]", "sigma[l]'(z[1])"), "a prime (') must follow a function's name"),
    ("a string constant", claim("C", "'C'"), "only numbers are allowed as constants"),
    ("a formula that is a number", DOCUMENT + '[[claim]]\nid = "N"\nlhs = 5\nrhs = "C"\n', "needs lhs"),
    ("a correction that is a list", claim("C", "C", "correction = [1]"), "needs correction"),
    ("claims that are not tables", "claim = [1, 2]\n" + DOCUMENT, "must be a table"),
    ("claim as a string", 'claim = "x"\n' + DOCUMENT, "claims are [[claim]] tables"),
    ("symbols as a list", "symbols = []\n" + DOCUMENT.replace("[symbols]\n", "[ignored]\n"),
     "[symbols] must be a table"),
    ("define as a number", "define = 5\n" + DOCUMENT, "[define] must be a table"),
    ("TOML nested 100 000 deep", DOCUMENT + "notes = " + "[" * 100_000 + "]" * 100_000 + "\n", "malformed TOML"),
    ("missing hidden", network("widths = [2, 3, 2]\noutput = \"sigmoid\"\nloss = \"half_sse\"\n"),
     "[network] needs hidden"),
    ("missing loss", network("widths = [2, 3, 2]\nhidden = \"sigmoid\"\noutput = \"sigmoid\"\n"),
     "[network] needs loss"),
    ("a letter product over labels", DOCUMENT.replace('t = "target"', 'ell = "label"').replace(
        "batch = 1", "batch = 30").replace('loss = "half_sse"', 'loss = "cross_entropy"').replace(
        'output = "sigmoid"', 'output = "softmax"') + '[[claim]]\nid = "Y"\nlhs = "C"\nrhs = "C"\n', "1 proved"),
    ("definitions nested 400 deep", DOCUMENT + "[define]\n\"d0\" = \"C\"\n" +
     "".join(f'"d{k}" = "d{k - 1} * 1"\n' for k in range(1, 400)) + '[[claim]]\nid = "D"\nlhs = "d399"\nrhs = "C"\n',
     "nest too deeply"),
    ("an outer product of 40 000 entries", network("widths = [2, 2]\noutput = \"sigmoid\"\nloss = \"half_sse\"\n"
                                                   "batch = 200\n") + '[[claim]]\nid = "O"\nlhs = "C"\n'
     'rhs = "sum(outer(x[1, :], x[1, :]))"\n', f"would be a 200×200 matrix; at most {limits.MAX_ENTRIES}"),
    ("a product of 40 000 entries", network("widths = [2, 2]\noutput = \"sigmoid\"\nloss = \"half_sse\"\n"
                                            "batch = 200\n") + '[[claim]]\nid = "O"\nlhs = "C"\n'
     'rhs = "sum(x.T @ x)"\n', "would be a 200×200 matrix"),
    ("a model of size 10**9", model(sizes="sizes = { N = 1000000000, D = 2 }"),
     f"from 1 to {limits.MAX_MODEL_SIZE}"),
    ("a model size inf", model(sizes="sizes = { N = inf, D = 2 }"), "must be an integer"),
    ("a model family over 10**9 members", model('"h[t]" = { expr = "h[t-1]", for = "t in 1..1000000000" }\n'
                                               'L = "sum(x @ w)"'), f"at most {limits.MAX_MODEL_MEMBERS}"),
    ("a model index sum over 10**9 terms", model(claim_rhs="sum(sum(x @ w) * 0 + k * 0, k in 1..1000000000) + "
                                                           "sum(x @ w)"), f"at most {limits.MAX_INDEX_SUM}"),
    ("a model index sum of 10**8 terms in all", model(claim_rhs="sum(k * j * 0, k in 1..10000, j in 1..10000) + "
                                                                "sum(x @ w)"), f"at most {limits.MAX_ENTRIES}"),
    ("a model forward nested 500 deep", model('L = "' + "-" * 500 + 'sum(x @ w)"'), "nested too deeply"),
    ("a model claim nested 500 deep", model(claim_rhs="-" * 500 + "sum(x @ w)"), "nested too deeply"),
    ("free letters spelling out too many entries", claim(" * ".join(f"a[1][{c}]" for c in "ijklpqrsu"), "0"),
     f"= 19683 entries; at most {limits.MAX_ENTRIES}"),
]


def _fifo(tmp_path):
    path = tmp_path / "fifo.toml"
    os.mkfifo(path)
    return str(path)


def _binary(tmp_path):
    path = tmp_path / "binary.toml"
    path.write_bytes(bytes(range(256)) * 16)
    return str(path)


def _huge(tmp_path):
    path = tmp_path / "huge.toml"
    with open(path, "wb") as handle:
        handle.truncate(limits.MAX_FILE_BYTES + 1)
    return str(path)


def _not_utf8(tmp_path):
    path = tmp_path / "latin1.toml"
    path.write_bytes('title = "café"\n'.encode("latin-1"))
    return str(path)


# (id, a function of tmp_path giving the path to verify, fragment)
PATH_CASES = [
    ("/dev/zero", lambda tmp_path: "/dev/zero", "is a device"),
    ("/dev/urandom", lambda tmp_path: "/dev/urandom", "is a device"),
    ("a FIFO", _fifo, "is a FIFO"),
    ("a binary file", _binary, "is binary"),
    ("a file past the size cap", _huge, f"at most {limits.MAX_FILE_BYTES} bytes"),
    ("Latin-1 text", _not_utf8, "not UTF-8 text"),
]

CSV = "0.5,0.25,1\n0.1,0.9,0\n0.3,0.3,1\n0.7,0.2,0\n0.2,0.8,1\n"
TRAIN = ["train", "--widths", "2,2", "--hidden", "tanh", "--output", "softmax", "--loss", "cross_entropy",
         "--epochs", "1", "--batch", "2"]

# (id, argv with {tmp} for the test's folder, fragment)
COMMAND_CASES = [
    ("--timeout inf", ["prove", "--widths", "2,1", "--timeout", "inf"], "at most 1e+06"),
    ("--timeout 1e308", ["prove", "--widths", "2,1", "--timeout", "1e308"], "at most 1e+06"),
    ("--timeout nan", ["verify", "{tmp}/good.toml", "--timeout", "nan"], "expected a positive number of seconds"),
    ("--timeout -1", ["prove", "--widths", "2,1", "--timeout", "-1"], "expected a positive number of seconds"),
    ("prove --exact width 100000", ["prove", "--widths", "100000,1", "--timeout", "2", "--exact"], "too large"),
    ("prove width 10**6", ["prove", "--widths", "1000000,1", "--timeout", "2"], f"at most {limits.MAX_WIDTH} units"),
    ("prove batch 10**9", ["prove", "--widths", "2,1", "--batch", "1000000000", "--timeout", "2"],
     f"a batch of at most {limits.MAX_BATCH}"),
    ("prove --exact batch 10**6", ["prove", "--widths", "2,1", "--batch", "1000000", "--timeout", "2", "--exact"], "too large"),
    ("prove --exact depth 30 of width 1", ["prove", "--widths", ",".join(["1"] * 31), "--timeout", "2", "--exact"],
     f"at most {limits.MAX_SYMBOLIC_DEPTH} layers"),
    ("prove --exact depth 60 of width 1", ["prove", "--widths", ",".join(["1"] * 61), "--timeout", "2", "--exact"],
     f"at most {limits.MAX_SYMBOLIC_DEPTH} layers"),
    ("prove 200 layers", ["prove", "--widths", ",".join(["1"] * 201), "--timeout", "2"],
     f"at most {limits.MAX_DEPTH} layers"),
    ("prove a width with 30 digits", ["prove", "--widths", "1" * 30 + ",1"], f"at most {limits.MAX_WIDTH} units"),
    ("prove --relu-at-zero 1e5000", ["prove", "--widths", "2,1", "--hidden", "relu", "--relu-at-zero", "1e5000"],
     "at most 100 digits"),
    ("export --l2-lambda nan", ["export", "--widths", "2,1", "--l2", "--l2-lambda", "nan", "-o", "{tmp}/k.py"],
     "a finite number ≥ 0"),
    ("export --l2-lambda inf", ["export", "--widths", "2,1", "--l2", "--l2-lambda", "inf", "-o", "{tmp}/k.py"],
     "a finite number ≥ 0"),
    ("export --l2-lambda -1", ["export", "--widths", "2,1", "--l2", "--l2-lambda", "-1", "-o", "{tmp}/k.py"],
     "a finite number ≥ 0"),
    ("export -o a folder", ["export", "--widths", "2,1", "-o", "{tmp}"], "cannot write"),
    ("--latex a folder", ["prove", "--widths", "2,1", "--latex", "{tmp}"], "it is a folder"),
    ("--pdf where the PDF is a folder", ["prove", "--widths", "2,1", "--latex", "{tmp}/proof.tex", "--pdf"],
     "it is a folder"),
    ("train --seed -1", TRAIN + ["--data", "{tmp}/data.csv", "--seed", "-1"], "an integer from 0"),
    ("train --seed 2**64", TRAIN + ["--data", "{tmp}/data.csv", "--seed", str(2**64)], "an integer from 0"),
    ("train --data /dev/zero", TRAIN + ["--data", "/dev/zero"], "is a device"),
    ("train --data /dev/urandom", TRAIN + ["--data", "/dev/urandom"], "is a device"),
    ("train --data a FIFO", TRAIN + ["--data", "{tmp}/fifo.csv"], "is a FIFO"),
    ("train --data binary", TRAIN + ["--data", "{tmp}/binary.csv"], "is binary"),
    ("train --batch 10**9", TRAIN[:-1] + ["1000000000", "--data", "{tmp}/data.csv"], "a batch of at most"),
    ("verify a folder with a FIFO", ["verify", "{tmp}/fifos"], "is a FIFO"),
]


def run_cli(argv: list[str], capsys) -> tuple[int, str, str]:
    """``symbackprop.cli.main`` in this process, with a watchdog that interrupts a hang."""
    watchdog = threading.Timer(WATCHDOG, _thread.interrupt_main)
    watchdog.start()
    try:
        code = main(argv)
    finally:
        watchdog.cancel()
    out, err = capsys.readouterr()
    assert code != 130, f"{argv[:3]}… did not finish within {WATCHDOG:g} s"
    return code, out, err


def assert_clean(code: int, out: str, err: str, fragment: str) -> None:
    assert code in (0, 1, 2), code
    for text in (out, err):
        assert "Traceback" not in text and 'File "' not in text, text[-2000:]
    if code == 2:
        assert err.strip(), "exit 2 without a message"
    for line in err.strip().splitlines():
        assert len(line) < 1000, line[:200]
    assert " ".join(fragment.split()) in " ".join((out + err).split()), (fragment, out[-1500:], err[-1500:])  # wrapped


@pytest.mark.parametrize("body,fragment", [c[1:] for c in VERIFY_CASES], ids=[c[0] for c in VERIFY_CASES])
def test_hostile_derivation_files(tmp_path, capsys, body, fragment):
    path = tmp_path / "doc.toml"
    path.write_text(body, encoding="utf-8")
    code, out, err = run_cli(["verify", str(path), "--timeout", "2"], capsys)
    assert_clean(code, out, err, fragment)


@pytest.mark.parametrize("make,fragment", [c[1:] for c in PATH_CASES], ids=[c[0] for c in PATH_CASES])
def test_hostile_paths(tmp_path, capsys, make, fragment):
    code, out, err = run_cli(["verify", make(tmp_path), "--timeout", "2"], capsys)
    assert code == 2
    assert_clean(code, out, err, fragment)


@pytest.mark.parametrize("argv,fragment", [c[1:] for c in COMMAND_CASES], ids=[c[0] for c in COMMAND_CASES])
def test_hostile_arguments(tmp_path, capsys, argv, fragment):
    (tmp_path / "good.toml").write_text(DOCUMENT, encoding="utf-8")
    (tmp_path / "data.csv").write_text(CSV, encoding="utf-8")
    (tmp_path / "binary.csv").write_bytes(bytes(range(256)))
    (tmp_path / "proof.pdf").mkdir()
    os.mkfifo(tmp_path / "fifo.csv")
    (tmp_path / "fifos").mkdir()
    os.mkfifo(tmp_path / "fifos" / "a.toml")
    code, out, err = run_cli([part.format(tmp=tmp_path) for part in argv], capsys)
    assert code == 2, (code, out[-500:], err[-500:])
    assert_clean(code, out, err, fragment)
    assert not (tmp_path / "k.py").exists()  # nothing written before the arguments are checked
