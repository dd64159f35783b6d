"""Explicit matrices of SymPy expressions and the matrix algebra the formulas are written in.

The forward pass, the losses (``rules.Loss.formula``) and the backprop recurrences
(``derive.backprop``) are written once against an *algebra*: an object with ``matmul``, ``T``,
``hadamard``, ``apply``…  :class:`Explicit` is the algebra of concrete instances, whose entries
are SymPy expressions the prover can decide.  SymPy's own ``Matrix`` is avoided: its products may
run intermediate simplification, and we only want plain, shared expression DAGs.
"""

from __future__ import annotations

from typing import Callable, Sequence

import sympy
from sympy import Add, Integer, Mul

from .algebra import Algebra


class ShapeError(ValueError):
    """Two matrices that an operation combines have incompatible shapes."""


class Mat:
    """An immutable ``rows × cols`` matrix of SymPy expressions."""

    __slots__ = ("rows", "cols", "entries")

    def __init__(self, entries: Sequence[Sequence[sympy.Expr]]):
        self.entries = tuple(tuple(sympy.sympify(e) for e in row) for row in entries)
        self.rows = len(self.entries)
        self.cols = len(self.entries[0]) if self.entries else 0
        if any(len(row) != self.cols for row in self.entries):
            raise ShapeError("ragged matrix")

    @classmethod
    def build(cls, rows: int, cols: int, entry: Callable[[int, int], sympy.Expr]) -> "Mat":
        return cls([[entry(i, j) for j in range(cols)] for i in range(rows)])

    @property
    def shape(self) -> tuple[int, int]:
        return (self.rows, self.cols)

    def __getitem__(self, index):
        i, j = index
        return self.entries[i][j]

    def __iter__(self):
        for row in self.entries:
            yield from row

    def __eq__(self, other):
        return isinstance(other, Mat) and self.entries == other.entries

    def __hash__(self):
        return hash(self.entries)

    def __repr__(self):
        return f"Mat({self.rows}×{self.cols})"

    def map(self, fn: Callable[[sympy.Expr], sympy.Expr]) -> "Mat":
        return Mat([[fn(e) for e in row] for row in self.entries])

    @property
    def T(self) -> "Mat":
        return Mat(list(zip(*self.entries))) if self.entries else self


def shape_text(shape) -> str:
    return f"{shape[0]}×{shape[1]}"


def _same_shape(op: str, a: Mat, b: Mat) -> None:
    if a.shape != b.shape:
        raise ShapeError(f"{op} of a {shape_text(a.shape)} and a {shape_text(b.shape)} matrix")


def broadcast_shape(op: str, a: tuple, b: tuple) -> tuple:
    """The shape of an elementwise ``op`` of matrices shaped ``a`` and ``b``: equal shapes, or a row
    (1 × n) or a column (m × 1) against an m × n matrix, or 1 × 1 against anything.  Anything else
    — a row against a column included — is a :class:`ShapeError` naming both shapes."""
    if a == b:
        return a
    for small, large in ((a, b), (b, a)):
        if small == (1, 1) or (small[0] == 1 and small[1] == large[1]) or (small[1] == 1 and small[0] == large[0]):
            return large
    raise ShapeError(f"{op} of a {shape_text(a)} and a {shape_text(b)} matrix")


def _zip(op: str, a, b, fn) -> "Mat | sympy.Expr":
    """Elementwise ``fn``; a scalar on either side broadcasts, and so do rows and columns
    (:func:`broadcast_shape`)."""
    if not isinstance(a, Mat) and not isinstance(b, Mat):
        return fn(a, b)
    if not isinstance(a, Mat):
        return b.map(lambda e: fn(a, e))
    if not isinstance(b, Mat):
        return a.map(lambda e: fn(e, b))
    if a.shape == b.shape:
        return Mat([[fn(x, y) for x, y in zip(ra, rb)] for ra, rb in zip(a.entries, b.entries)])
    rows, cols = broadcast_shape(op, a.shape, b.shape)

    def at(m: Mat, i: int, j: int):
        return m.entries[i if m.rows > 1 else 0][j if m.cols > 1 else 0]

    return Mat.build(rows, cols, lambda i, j: fn(at(a, i, j), at(b, i, j)))


class Elementwise(Algebra):
    """The elementwise operations of a matrix algebra, over the algebra's own ``_zip``."""

    @staticmethod
    def _zip(op: str, a, b, fn):
        return _zip(op, a, b, fn)

    def add(self, a, b):
        return self._zip("sum", a, b, lambda x, y: x + y)

    def sub(self, a, b):
        return self._zip("difference", a, b, lambda x, y: x - y)

    def hadamard(self, a, b):
        return self._zip("elementwise product", a, b, lambda x, y: x * y)

    def divide(self, a, b):
        return self._zip("elementwise quotient", a, b, lambda x, y: x / y)


class Explicit(Elementwise):
    """The algebra of explicit instances.  ``layout`` says where examples are: columns or rows."""

    def __init__(self, layout: str = "columns"):
        if layout not in ("columns", "rows"):
            raise ValueError(f"layout must be 'columns' or 'rows', not {layout!r}")
        self.layout = layout

    # --- linear algebra
    def matmul(self, a: Mat, b: Mat) -> Mat:
        if a.cols != b.rows:
            raise ShapeError(f"product of a {shape_text(a.shape)} and a {shape_text(b.shape)} matrix")
        columns = list(zip(*b.entries))
        return Mat([[Add(*[Mul(x, y) for x, y in zip(row, col)]) for col in columns] for row in a.entries])

    def T(self, a: Mat) -> Mat:
        return a.T

    def scale(self, c, a):
        c = sympy.sympify(c)
        return a.map(lambda e: c * e) if isinstance(a, Mat) else c * a

    def apply(self, fn: Callable, a: Mat) -> Mat:
        return a.map(fn)

    def log(self, a: Mat) -> Mat:
        return a.map(sympy.log)

    def exp(self, a):
        return a.map(sympy.exp) if isinstance(a, Mat) else sympy.exp(a)

    def power(self, a, p):
        p = sympy.sympify(p)
        return a.map(lambda e: e ** p) if isinstance(a, Mat) else a ** p

    def maximum(self, a, b):
        """max(a, b) = b + relu(a − b): the ReLU atom carries the kink, and its derivative rule
        (the step) says which side the gradient flows to."""
        from .rules import ACTIVATIONS

        relu = ACTIVATIONS["relu"].atom
        return self._zip("elementwise maximum", a, b, lambda x, y: y + relu(x - y))

    def shape(self, a) -> tuple:
        return a.shape if isinstance(a, Mat) else (1, 1)

    def sum_axis(self, a: Mat, axis: int) -> Mat:
        if axis == 0:
            return Mat([[Add(*column) for column in zip(*a.entries)]])
        if axis == 1:
            return Mat([[Add(*row)] for row in a.entries])
        raise ValueError(f"axis must be 0 or 1, not {axis!r}")

    def concat(self, a: Mat, b: Mat, axis: int) -> Mat:
        if axis == 0:
            if a.cols != b.cols:
                raise ShapeError(f"stacking a {shape_text(a.shape)} on a {shape_text(b.shape)} matrix")
            return Mat(list(a.entries) + list(b.entries))
        if a.rows != b.rows:
            raise ShapeError(f"joining a {shape_text(a.shape)} and a {shape_text(b.shape)} matrix side by side")
        return Mat([list(ra) + list(rb) for ra, rb in zip(a.entries, b.entries)])

    def block(self, a: Mat, rows: tuple, cols: tuple) -> Mat:
        (r0, r1), (c0, c1) = rows, cols
        if not (0 <= r0 < r1 <= a.rows and 0 <= c0 < c1 <= a.cols):
            raise ShapeError(f"rows {r0 + 1}..{r1}, columns {c0 + 1}..{c1} are outside a {shape_text(a.shape)} matrix")
        return Mat([row[c0:c1] for row in a.entries[r0:r1]])

    def build(self, rows: int, cols: int, entry) -> Mat:
        return Mat.build(rows, cols, entry)

    def entry(self, a, i: int, j: int):
        if not isinstance(a, Mat):
            return a
        return a.entries[i][j]

    def index_sum(self, body, count: int):
        return Add(*[body(k) for k in range(count)])

    def full(self, value, like: Mat) -> Mat:
        return Mat.build(like.rows, like.cols, lambda i, j: Integer(value))

    def ones(self, rows: int, cols: int = 1) -> Mat:
        return Mat.build(rows, cols, lambda i, j: Integer(1))

    def total(self, a: Mat) -> sympy.Expr:
        return Add(*a)

    # --- layout-aware pieces: "example" means a column (columns layout) or a row (rows layout)
    def examples(self, a: Mat) -> int:
        return a.cols if self.layout == "columns" else a.rows

    def output_width(self, a: Mat) -> int:
        return a.rows if self.layout == "columns" else a.cols

    def example_sums(self, a: Mat) -> Mat:
        """Each example's sum over units, broadcast back over its units (1·1ᵀ·a per example)."""
        if self.layout == "columns":
            sums = [Add(*col) for col in zip(*a.entries)]
            return Mat.build(a.rows, a.cols, lambda i, j: sums[j])
        sums = [Add(*row) for row in a.entries]
        return Mat.build(a.rows, a.cols, lambda i, j: sums[i])

    def affine(self, W: Mat, A: Mat, b: Mat) -> Mat:
        """W a + b for every example: W A + b 1ᵀ (columns) or A Wᵀ + 1 bᵀ (rows)."""
        if self.layout == "columns":
            product = self.matmul(W, A)
            if b.shape != (product.rows, 1):
                raise ShapeError(f"bias of shape {shape_text(b.shape)} for a layer of width {product.rows}")
            return Mat.build(product.rows, product.cols, lambda i, j: product[i, j] + b[i, 0])
        product = self.matmul(A, W.T)
        if b.shape != (product.cols, 1):
            raise ShapeError(f"bias of shape {shape_text(b.shape)} for a layer of width {product.cols}")
        return Mat.build(product.rows, product.cols, lambda i, j: product[i, j] + b[j, 0])

    def softmax(self, Z: Mat, atom: Callable) -> Mat:
        """softmax_i(z) of each example, as ``atom(i, z_1, …, z_n)``."""
        if self.layout == "columns":
            columns = list(zip(*Z.entries))
            return Mat.build(Z.rows, Z.cols, lambda i, j: atom(i, *columns[j]))
        return Mat.build(Z.rows, Z.cols, lambda i, j: atom(j, *Z.entries[i]))
