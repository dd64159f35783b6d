"""The matrix algebra every formula is written against: one interface, documented here.

The forward pass and the losses (``network``, ``rules.Loss.formula``), the backprop recurrences
(``derive.backprop``), the layer library's forward and backward passes (``layers``) and the
claim language's operations are Python functions of an algebra ``alg`` and its values.  They are
written once; each *interpretation* of the algebra reads them differently:

==========================  =====================================================================
``matrices.Explicit``       exact: matrices of SymPy expressions, which the prover decides
``indexed.Sized``           symbolic sizes: entries with sums over 0…n−1 (proofs for every size)
``numeric.NumpyAlgebra``    float arrays: the reference numerics (and ``rounding``'s error bounds)
``general.Printed``         SymPy matrix expressions: the recurrences as statements to print
``latex.calculation``       formulas as values, for the LaTeX calculational proofs
``kernels``                 a recorded program, printed as NumPy / PyTorch / JAX code
==========================  =====================================================================

A value is a matrix of the interpretation (rows × cols; a vector is n × 1 or 1 × n) or a scalar.
Every interpretation implements the **primitives** below; the **derived** operations are defined
here, once, in terms of them, so a new derived operation reaches every interpretation at once.
A primitive an interpretation lacks raises :class:`NotSupported` naming both — a new primitive is
added to this class (with its contract) and then to each interpretation that needs it.

Primitives
    ``shape(a)``, ``matmul(a, b)``, ``T(a)``, ``add/sub/hadamard/divide(a, b)`` (elementwise; a
    scalar broadcasts, and so does a row 1 × n against an m × n matrix or a column m × 1 against
    it — any other shape pair is an error naming both shapes), ``scale(c, a)``, ``apply(fn, a)``
    (an elementwise function: a rule atom such as σ, or a closed form such as σ′), ``log(a)``,
    ``exp(a)``, ``power(a, p)`` (elementwise, p a rational number: ``sqrt`` is ``p = 1/2``),
    ``maximum(a, b)``, ``full(value, like)``, ``ones(rows, cols)``, ``total(a)`` (the sum of all
    entries, a scalar), ``sum_axis(a, axis)`` (axis 0 sums each column into a 1 × cols row, axis 1
    each row into a rows × 1 column), ``concat(a, b, axis)``, ``block(a, rows, cols)`` (the
    sub-matrix of the 0-based half-open ``range``-like pairs ``rows = (start, stop)``).
Entry-level primitives (formulas defined entry by entry: convolution, pooling, index sums)
    ``build(rows, cols, entry)`` — the matrix whose (i, j) entry is ``entry(i, j)`` (0-based),
    ``entry(a, i, j)``, ``padded_entry(a, i, j)`` (the entry, or 0 where (i, j) is outside the
    matrix or not a pair of integers: a zero-padded operand, as in a convolution's backward pass),
    ``index_sum(body, count)`` — Σ_{k=0}^{count−1} body(k), a scalar.
    Indices are Python integers in explicit interpretations and SymPy index symbols in ``Sized``.
Layout-aware pieces of a dense layer (``layout`` is "columns": examples as columns, or "rows")
    ``examples(a)``, ``output_width(a)``, ``example_sums(a)``, ``affine(W, A, b)``,
    ``softmax(Z, atom)`` (over each example's units).  Defaults are derived below.
"""

from __future__ import annotations

from fractions import Fraction


class NotSupported(NotImplementedError):
    """This interpretation of the algebra has no such operation (yet)."""


def _rational(p):
    import sympy

    return sympy.Rational(Fraction(p).numerator, Fraction(p).denominator) if not hasattr(p, "is_Rational") else p


class Algebra:
    """The interface; see the module docstring.  Subclasses override the primitives they support."""

    layout: str = "columns"

    def _missing(self, op: str):
        raise NotSupported(f"{type(self).__name__} does not support {op}")

    # ------------------------------------------------------------------------- primitives
    def shape(self, a) -> tuple:
        return a.shape

    def matmul(self, a, b):
        self._missing("matmul")

    def T(self, a):
        self._missing("T")

    def add(self, a, b):
        self._missing("add")

    def sub(self, a, b):
        self._missing("sub")

    def hadamard(self, a, b):
        self._missing("hadamard")

    def divide(self, a, b):
        self._missing("divide")

    def scale(self, c, a):
        self._missing("scale")

    def apply(self, fn, a):
        self._missing("apply")

    def log(self, a):
        self._missing("log")

    def exp(self, a):
        self._missing("exp")

    def power(self, a, p):
        self._missing("power")

    def maximum(self, a, b):
        self._missing("maximum")

    def full(self, value, like):
        self._missing("full")

    def ones(self, rows, cols=1):
        self._missing("ones")

    def total(self, a):
        self._missing("total")

    def sum_axis(self, a, axis: int):
        self._missing("sum_axis")

    def concat(self, a, b, axis: int):
        self._missing("concat")

    def block(self, a, rows: tuple, cols: tuple):
        self._missing("block")

    def build(self, rows, cols, entry):
        self._missing("build")

    def entry(self, a, i, j):
        self._missing("entry")

    def index_sum(self, body, count):
        self._missing("index_sum")

    def padded_entry(self, a, i, j):
        """Explicit interpretations: the entry, or 0 outside (integers only; see the docstring)."""
        rows, cols = self.shape(a)
        for x, n in ((i, rows), (j, cols)):
            if not (float(x).is_integer() and 0 <= x < n):
                return 0
        return self.entry(a, int(i), int(j))

    # -------------------------------------------------------------------- derived, once
    def neg(self, a):
        return self.scale(-1, a)

    def sqrt(self, a):
        return self.power(a, _rational(Fraction(1, 2)))

    def mean_axis(self, a, axis: int):
        """The mean along ``axis`` (kept as a row or a column, like ``sum_axis``)."""
        count = self.shape(a)[axis]
        return self.scale(1 / _rational(count) if isinstance(count, int) else 1 / count, self.sum_axis(a, axis))

    def var_axis(self, a, axis: int):
        """The population variance along ``axis``: mean((a − mean(a))²)."""
        centred = self.sub(a, self.mean_axis(a, axis))
        return self.mean_axis(self.hadamard(centred, centred), axis)

    def mean(self, a):
        rows, cols = self.shape(a)
        return self.scale(1 / (_rational(rows * cols) if isinstance(rows * cols, int) else rows * cols), self.total(a))

    def softmax_axis(self, a, axis: int):
        """exp(a) / Σ exp(a) along ``axis`` (the textbook definition; kernels use stable forms)."""
        e = self.exp(a)
        return self.divide(e, self.sum_axis(e, axis))

    def logsumexp_axis(self, a, axis: int):
        return self.log(self.sum_axis(self.exp(a), axis))

    def outer(self, u, v):
        """u vᵀ for two columns."""
        return self.matmul(u, self.T(v))

    # ------------------------------------------------------- dense layers, by layout
    def examples(self, a):
        rows, cols = self.shape(a)
        return cols if self.layout == "columns" else rows

    def output_width(self, a):
        rows, cols = self.shape(a)
        return rows if self.layout == "columns" else cols

    def example_sums(self, a):
        """Each example's sum over its units, broadcast back over the units: 1 1ᵀ a (columns), a 1 1ᵀ (rows)."""
        rows, cols = self.shape(a)
        if self.layout == "columns":
            return self.matmul(self.ones(rows, 1), self.matmul(self.ones(1, rows), a))
        return self.matmul(self.matmul(a, self.ones(cols, 1)), self.ones(1, cols))

    def affine(self, W, A, b):
        """W a + b for every example: W A + b 1ᵀ (columns) or A Wᵀ + 1 bᵀ (rows)."""
        if self.layout == "columns":
            return self.add(self.matmul(W, A), b)
        return self.add(self.matmul(A, self.T(W)), self.T(b))

    def softmax(self, Z, atom=None):
        return self.softmax_axis(Z, 0 if self.layout == "columns" else 1)
