"""Training with the generated kernels: data sets, mini-batch SGD, learning curves.

Data are arrays with one example per row (the kernels' default layout).  Classification targets
are one-hot rows; accuracy is the share of examples whose largest output is the labelled class
(one sigmoid output: output > 1/2 against target > 1/2).  Everything the user can get wrong in a
data file is a :class:`DataError` with a one-line message naming the file and line.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from . import limits


class DataError(ValueError):
    """Unusable training data; the message is one line naming the file and line."""


@dataclass
class Dataset:
    name: str
    X_train: np.ndarray
    Y_train: np.ndarray
    X_test: np.ndarray
    Y_test: np.ndarray
    classification: bool = True


def _one_hot(labels: np.ndarray, classes: int) -> np.ndarray:
    Y = np.zeros((labels.size, classes))
    Y[np.arange(labels.size), labels] = 1.0
    return Y


def split(name: str, X, Y, test_fraction: float, seed: int, classification: bool) -> Dataset:
    """A seeded shuffle, then the last ``test_fraction`` of the examples held out for testing."""
    order = np.random.default_rng(seed).permutation(len(X))
    test = max(1, int(round(len(X) * test_fraction))) if test_fraction > 0 else 0
    train, held = order[:len(X) - test], order[len(X) - test:]
    if len(train) == 0:
        raise DataError(f"{name}: {len(X)} examples leave none for training with a test fraction of {test_fraction}")
    return Dataset(name, X[train], Y[train], X[held], Y[held], classification)


def load_digits(test_fraction: float = 0.2, seed: int = 0) -> Dataset:
    """scikit-learn's bundled 8×8 digits (1797 examples, 64 features scaled to [0, 1], 10 classes)."""
    try:
        from sklearn.datasets import load_digits as sklearn_digits
    except ImportError:
        raise DataError("--data digits needs scikit-learn: pip install 'symbackprop[train]'") from None
    digits = sklearn_digits()
    X = digits.data / 16.0
    return split("digits", X, _one_hot(digits.target, 10), test_fraction, seed, True)


def load_csv(path: str, inputs: int, outputs: int, test_fraction: float = 0.2, seed: int = 0,
             classification: bool = False) -> Dataset:
    """A CSV file of examples, one per line: ``inputs`` features, then ``outputs`` target values or
    (with several outputs) one integer class label 0 … outputs−1.  A non-numeric first line is a
    header; blank lines and lines starting with ``#`` are skipped.
    """
    widths = {inputs + outputs: "targets"}
    if outputs > 1:
        widths[inputs + 1] = "label"
    rows, kind = [], None
    try:
        content = limits.read_text(path, limits.MAX_DATA_BYTES, "CSV file")
    except OSError as error:
        raise DataError(f"{path}: cannot read ({error.strerror or error})") from None
    except limits.LimitError as error:
        raise DataError(f"{path}: {error}") from None
    except UnicodeDecodeError as error:
        raise DataError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start})") from None
    for number, line in enumerate(content.split("\n"), start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        cells = [cell.strip() for cell in text.split(",")]
        bad = next((cell for cell in cells if not _is_number(cell)), None)
        if bad is not None:
            if not rows and kind is None:
                kind = "header"
                continue
            raise DataError(f"{path}:{number}: {bad!r} is not a number")
        values = [float(cell) for cell in cells]
        this = widths.get(len(values))
        if this is None or kind not in (None, "header", this):
            expected = " or ".join(f"{w} ({inputs} features and {'one class label' if k == 'label' else f'{outputs} targets'})"
                                   for w, k in widths.items() if kind in (None, "header", k))
            raise DataError(f"{path}:{number}: {len(values)} columns, expected {expected}")
        kind = this
        infinite = next((v for v in values if not math.isfinite(v)), None)
        if infinite is not None:
            raise DataError(f"{path}:{number}: {infinite} is not a finite number")
        if kind == "label" and (values[-1] != int(values[-1]) or not 0 <= values[-1] < outputs):
            raise DataError(f"{path}:{number}: class label {values[-1]:g} is not an integer in 0..{outputs - 1}")
        rows.append(values)
    if not rows:
        raise DataError(f"{path}: no examples")
    data = np.array(rows)
    X = data[:, :inputs]
    if kind == "label":
        return split(path, X, _one_hot(data[:, inputs].astype(int), outputs), test_fraction, seed, True)
    return split(path, X, data[:, inputs:], test_fraction, seed, classification)


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


@dataclass
class Epoch:
    epoch: int
    loss: float  # mean training loss over the epoch's full training set, after the epoch
    train_accuracy: float | None
    test_accuracy: float | None
    test_loss: float | None
    seconds: float  # cumulative training time
    partial: bool = False  # the time limit ended this epoch before its last mini-batch


def accuracy(outputs: np.ndarray, Y: np.ndarray) -> float:
    if Y.shape[1] == 1:
        return float(np.mean((outputs[:, 0] > 0.5) == (Y[:, 0] > 0.5)))
    return float(np.mean(outputs.argmax(axis=1) == Y.argmax(axis=1)))


@dataclass
class Training:
    """The result of :func:`train`: the parameters and one :class:`Epoch` per epoch."""

    params: dict
    history: list = field(default_factory=list)
    stopped: str | None = None  # "timeout" when the time limit ended training early

    def __repr__(self) -> str:
        last = self.history[-1] if self.history else None
        return (f"<Training {len(self.history)} epochs" + (f", loss {last.loss:.4g}" if last else "")
                + (f", stopped: {self.stopped}" if self.stopped else "") + ">")


def train(kernel, data: Dataset, *, epochs: int = 30, lr: float = 0.1, batch: int = 32, seed: int = 0,
          progress=None, on_epoch=None, timeout: float | None = None) -> Training:
    """Mini-batch SGD with the kernel's ``train_step``.

    ``progress(epoch, fraction)`` is called as it goes and ``on_epoch(Epoch)`` as each epoch ends
    (so that an interrupted run keeps what it printed).  After ``timeout`` seconds of training the
    epoch under way ends early: it is evaluated, reported and marked ``partial``.
    """
    if kernel.spec.layout != "rows":
        raise ValueError("training uses examples as rows: build the kernel with layout='rows'")
    dtype = np.dtype(kernel.dtype)
    X, Y = data.X_train.astype(dtype), data.Y_train.astype(dtype)
    X_test, Y_test = data.X_test.astype(dtype), data.Y_test.astype(dtype)
    params = kernel.init_params(seed)
    rng = np.random.default_rng(seed + 1)
    result = Training(params)
    elapsed = 0.0
    steps = max(1, math.ceil(len(X) / batch))
    for epoch in range(1, epochs + 1):
        started = time.perf_counter()
        order = rng.permutation(len(X))
        Xs, Ys = X[order], Y[order]
        for step in range(steps):
            kernel.train_step(params, Xs[step * batch:(step + 1) * batch], Ys[step * batch:(step + 1) * batch], lr)
            if progress is not None and step % 8 == 0:
                progress(epoch, (step + 1) / steps)
            if timeout is not None and elapsed + time.perf_counter() - started > timeout:
                result.stopped = "timeout"
                break
        elapsed += time.perf_counter() - started
        row = evaluate(kernel, params, X, Y, X_test, Y_test, data.classification, epoch, elapsed)
        row.partial = result.stopped is not None and step < steps - 1
        result.history.append(row)
        if on_epoch is not None:
            on_epoch(row)
        if result.stopped:
            break
    return result


def evaluate(kernel, params, X, Y, X_test, Y_test, classification, epoch=0, seconds=0.0) -> Epoch:
    loss = kernel.loss(params, X, Y)
    train_accuracy = accuracy(kernel.forward(params, X), Y) if classification else None
    test_loss = test_accuracy = None
    if len(X_test):
        test_loss = kernel.loss(params, X_test, Y_test)
        test_accuracy = accuracy(kernel.forward(params, X_test), Y_test) if classification else None
    return Epoch(epoch, float(loss), train_accuracy, test_accuracy, test_loss, seconds)


def plotting():
    """matplotlib's pyplot (non-interactive), or a DataError naming the extra to install: called
    before training too, so that a missing matplotlib does not cost the run."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise DataError("--plot needs matplotlib: pip install 'symbackprop[train]'") from None
    return plt


def plot(history: list, path: str, title: str = "") -> None:
    """The learning curve (loss and accuracy per epoch) as an image file."""
    plt = plotting()
    epochs = [e.epoch for e in history]
    figure, loss_axis = plt.subplots(figsize=(6, 4))
    loss_axis.plot(epochs, [e.loss for e in history], label="training loss", color="tab:blue")
    if history and history[0].test_loss is not None:
        loss_axis.plot(epochs, [e.test_loss for e in history], label="test loss", color="tab:blue", linestyle="--")
    loss_axis.set_xlabel("epoch")
    loss_axis.set_ylabel("loss")
    loss_axis.set_yscale("log")
    handles = loss_axis.get_legend_handles_labels()
    if history and history[0].train_accuracy is not None:
        accuracy_axis = loss_axis.twinx()
        accuracy_axis.plot(epochs, [e.train_accuracy for e in history], label="training accuracy", color="tab:orange")
        if history[0].test_accuracy is not None:
            accuracy_axis.plot(epochs, [e.test_accuracy for e in history], label="test accuracy",
                               color="tab:orange", linestyle="--")
        accuracy_axis.set_ylabel("accuracy")
        more = accuracy_axis.get_legend_handles_labels()
        handles = (handles[0] + more[0], handles[1] + more[1])
    loss_axis.legend(*handles, loc="center right")
    if title:
        loss_axis.set_title(title)
    figure.tight_layout()
    try:
        figure.savefig(path)
    except (OSError, ValueError) as error:
        raise DataError(f"{path}: cannot write the plot ({error})") from None
    finally:
        plt.close(figure)


# ----------------------------------------------------------------- PyTorch and JAX kernels

ENGINE_EXTRAS = {"torch": ("torch", "PyTorch", "torch"), "jax": ("jax", "JAX", "jax")}


def require_engine(target: str) -> None:
    """A DataError naming the extra to install when the engine of ``target`` is missing."""
    if target == "numpy":
        return
    module, name, extra = ENGINE_EXTRAS[target]
    try:
        __import__(module)
    except ImportError:
        raise DataError(f"--target {target} needs {name}: pip install 'symbackprop[{extra}]'") from None


class EngineKernel:
    """A PyTorch or JAX kernel behind the NumPy kernel's interface, for :func:`train`: NumPy
    batches in (converted per call: ``torch.from_numpy`` shares the memory), a float loss and a
    NumPy output out, ``train_step`` in place (JAX's returns new arrays: they replace the old)."""

    def __init__(self, kernel):
        self.kernel, self.module = kernel, kernel.module
        self.spec, self.dtype, self.target, self.seconds = kernel.spec, kernel.dtype, kernel.target, kernel.seconds
        if self.target == "torch":
            import torch

            self._torch = torch
            self._array = torch.from_numpy
            self._engine_dtype = getattr(torch, self.dtype)
        else:
            import jax

            if self.dtype == "float64":
                jax.config.update("jax_enable_x64", True)  # JAX computes in float32 otherwise
            self._array = jax.numpy.asarray
            self._engine_dtype = self.dtype

    def init_params(self, seed=0):
        return self.module.init_params(seed, dtype=self._engine_dtype)

    def train_step(self, params, X, Y, lr):
        if self.target == "torch":
            self.module.train_step(params, self._array(X), self._array(Y), lr)
        else:
            params.update(self.module.train_step(params, self._array(X), self._array(Y), lr))

    def loss(self, params, X, Y):
        if self.target == "torch":
            with self._torch.no_grad():
                return float(self.module.loss(params, self._array(X), self._array(Y)))
        return float(self.module.loss(params, self._array(X), self._array(Y)))

    def forward(self, params, X):
        output = self.module.forward(params, self._array(X))
        return output.detach().numpy() if self.target == "torch" else np.asarray(output)


def engine_kernel(kernel) -> EngineKernel:
    return EngineKernel(kernel)
