"""Training with the generated kernels: digits, CSV files and their errors, the plot, the progress bar."""

from __future__ import annotations

import numpy as np
import pytest

from symbackprop import kernels, train
from symbackprop.cli import main
from symbackprop.network import NetworkSpec

from .optional import require


def test_digits_reaches_97_percent_test_accuracy():
    require("sklearn")
    spec = NetworkSpec(widths=(64, 32, 10), hidden="relu", output="softmax", loss="cross_entropy", layout="rows")
    data = train.load_digits(test_fraction=0.2, seed=0)
    result = train.train(kernels.build(spec), data, epochs=30, lr=0.1, batch=32, seed=0)
    last = result.history[-1]
    assert last.test_accuracy >= 0.97, [e.test_accuracy for e in result.history]
    assert result.history[0].loss > 2 * last.loss


def test_train_command_on_digits_prints_each_epoch_and_plots(tmp_path, capsys):
    require("sklearn")
    require("matplotlib")
    plot = tmp_path / "curve.png"
    assert main(["train", "--widths", "64,32,10", "--data", "digits", "--epochs", "3", "--plot", str(plot)]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0].startswith("training 64-32-10 relu/softmax cross_entropy on digits: 1438 training and 359 test")
    assert lines[1].split() == ["epoch", "loss", "test", "loss", "train", "acc", "test", "acc", "elapsed", "s"]
    assert [line.split()[0] for line in lines[2:5]] == ["1", "2", "3"]
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert err == ""  # the progress bar is drawn only on a terminal


def test_digits_needs_matching_widths(capsys):
    assert main(["train", "--widths", "63,32,10", "--data", "digits"]) == 2
    assert "digits has 64 features and 10 classes" in capsys.readouterr().err


def test_missing_scikit_learn_is_a_one_line_error(monkeypatch, capsys):
    import sys

    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)  # import fails as if not installed
    assert main(["train", "--widths", "64,32,10", "--data", "digits"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pip install 'symbackprop[train]'" in err


def write(tmp_path, text, name="data.csv"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def blobs(rng, n=200):
    """Two well-separated classes in the plane."""
    labels = rng.integers(0, 2, size=n)
    points = rng.normal(size=(n, 2)) * 0.5 + np.where(labels[:, None] == 1, 2.0, -2.0)
    return points, labels


def test_csv_with_labels_trains_to_separate_two_blobs(tmp_path, capsys):
    points, labels = blobs(np.random.default_rng(0))
    text = "x,y,label\n" + "".join(f"{p[0]:.6f},{p[1]:.6f},{c}\n" for p, c in zip(points, labels))
    path = write(tmp_path, text)
    assert main(["train", "--widths", "2,8,2", "--data", path, "--epochs", "20"]) == 0
    out = capsys.readouterr().out
    assert "160 training and 40 test examples" in out
    assert out.splitlines()[-1].split()[4] == "100.00%"  # test accuracy after the last epoch


def test_csv_with_targets_trains_a_regression(tmp_path, capsys):
    rng = np.random.default_rng(1)
    X = rng.uniform(-1, 1, size=(120, 3))
    Y = X @ np.array([[0.5], [-1.0], [0.25]]) + 0.1
    path = write(tmp_path, "".join(",".join(f"{v:.6f}" for v in row) + "\n" for row in np.hstack([X, Y])))
    data = train.load_csv(path, 3, 1)
    assert not data.classification and data.Y_train.shape == (96, 1)
    assert main(["train", "--widths", "3,1", "--output-activation", "identity", "--loss", "half_sse", "--data", path,
                 "--epochs", "60", "--lr", "0.3"]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()[2:]]
    assert float(rows[-1][1]) < 1e-3 < float(rows[0][1])
    assert rows[-1][3] == "-"  # no accuracy for a regression


@pytest.mark.parametrize("text, message", [
    ("1,2,0\n3,x,1\n", "data.csv:2: 'x' is not a number"),
    ("1,2,0\n3,4,1,5\n", "data.csv:2: 4 columns, expected 3 (2 features and one class label)"),
    ("1,2,0\n\n3,nan,1\n", "data.csv:3: nan is not a finite number"),
    ("1,2,0\n3,4,inf\n", "data.csv:2: inf is not a finite number"),
    ("1,2,0\n3,4,2\n", "data.csv:2: class label 2 is not an integer in 0..1"),
    ("1,2,0.5\n", "data.csv:1: class label 0.5 is not an integer in 0..1"),
    ("1,2,0.5,0.5\n3,4,1\n", "data.csv:2: 3 columns, expected 4 (2 features and 2 targets)"),
    ("a,b,c\n", "data.csv: no examples"),
    ("1,2\n", "data.csv:1: 2 columns, expected 4 (2 features and 2 targets) or 3 (2 features and one class label)"),
])
def test_csv_errors_are_one_line_with_file_and_line(tmp_path, capsys, text, message):
    path = write(tmp_path, text)
    assert main(["train", "--widths", "2,4,2", "--data", path]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and "Traceback" not in err


def test_missing_csv_file(tmp_path, capsys):
    assert main(["train", "--widths", "2,4,2", "--data", str(tmp_path / "none.csv")]) == 2
    assert "none.csv: cannot read" in capsys.readouterr().err


@pytest.mark.parametrize("argument", [["--epochs", "0"], ["--lr", "-1"], ["--test-fraction", "1"],
                                      ["--layout", "columns"]])
def test_bad_training_options(tmp_path, capsys, argument):
    path = write(tmp_path, "1,2,0\n")
    assert main(["train", "--widths", "2,4,2", "--data", path, *argument]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_progress_bar_on_a_terminal(tmp_path, capsys, monkeypatch):
    import sys

    points, labels = blobs(np.random.default_rng(2), n=400)
    path = write(tmp_path, "".join(f"{p[0]},{p[1]},{c}\n" for p, c in zip(points, labels)))
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    assert main(["train", "--widths", "2,4,2", "--data", path, "--epochs", "2", "--batch", "4"]) == 0
    err = capsys.readouterr().err
    assert "epoch 1/2" in err and "━" in err and err.endswith("\x1b[2K")  # drawn, then cleared
