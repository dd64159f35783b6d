"""Matrices of symbolic size, and deciding identities between their entries.

A :class:`SizedMat` is an ``n × m`` matrix given by its entry ``(i, j) ↦ expr`` where n and m
may be SymPy symbols; :class:`Sized` is the matrix algebra over such matrices (the same
interface as ``matrices.Explicit``), so the formulas of ``rules`` and ``derive`` — written once
against an algebra — produce entries with ``Sum`` over ``0 … n−1``.  SymPy differentiates those
entries with respect to ``IndexedBase`` entries (``KroneckerDelta`` appears), and
:func:`decide_zero` decides whether a difference of such entries is identically 0 for every size.

:class:`Downstream` is an arbitrary differentiable function of a whole matrix of symbolic size
(φ(z_{k+1})); its derivative is the chain rule over its rows × cols arguments, with the partials
:class:`Gradient` left as named, opaque values.  (A ``Function`` whose ``fdiff`` returns the
partial needs a fixed number of arguments; the chain rule here is the same rule with a symbolic
number of them.)

Deciding zero (sound; "not zero" only means "not shown"):

1. ``doit`` collapses the Kronecker sums into ``Piecewise((…, j <= n−1), (0, True))``; a condition
   implied by the ranges of the free and bound indices (0 ≤ j ≤ n−1 for each) is discharged —
   each side of the relation is linear in each index, so checking both ends of its range suffices.
2. Every ``Sum`` is brought to a canonical form: summand over a common denominator, split into
   terms, factors free of the summation index pulled out, the bound index renamed canonically.
   The result is a rational function whose generators are entries, atoms and canonical sums;
   ``cancel`` to 0 is a proof (the denominators, σ, 1−σ, Σeᶻ …, never vanish).
   Before the sums are taken, integer arithmetic the ranges decide is carried out
   (:func:`_residues`): δ(p·i + a, p·I + U) = δ(i, I)·δ(a, U) for offsets 0 ≤ a, U ≤ p − 1, and
   ⌊(p·I + U)/p⌋ = I — a pooling window's position and offset.
3. Otherwise sums over the same range are merged into one, Σ_l F(l), and F(l) is decided
   with l a free index: F ≡ 0 implies the sum is 0.
"""

from __future__ import annotations

from typing import Callable

import sympy
from sympy import Add, And, Integer, KroneckerDelta, Mul, Piecewise, Sum, Symbol, Tuple
from sympy.core.relational import Relational

from . import budget
from .matrices import Elementwise

BOUND_NAMES = ("l", "q", "r", "s", "t", "u", "v", "w")


def index(name: str) -> Symbol:
    """An index symbol (free or bound): an integer."""
    return Symbol(name, integer=True)


def size(name: str) -> Symbol:
    """A symbolic size: a positive integer."""
    return Symbol(name, integer=True, positive=True)


def _fresh(expr, avoid=()) -> Symbol:
    """A bound index whose name occurs nowhere in ``expr`` (free or bound), so nothing is captured."""
    used = {s.name for s in expr.atoms(Symbol)} | {getattr(a, "name", str(a)) for a in avoid}
    for name in BOUND_NAMES:
        if name not in used:
            return index(name)
    counter = 1
    while f"l{counter}" in used:
        counter += 1
    return index(f"l{counter}")


def summation(body: Callable, upper) -> Sum:
    """Σ_{l=0}^{upper−1} body(l), with a bound index that captures nothing in the body."""
    placeholder = sympy.Dummy("l", integer=True)
    expr = sympy.sympify(body(placeholder))
    name = _fresh(expr)
    return Sum(expr.xreplace({placeholder: name}), (name, 0, upper - 1))


# ------------------------------------------------------------------------ sized matrices


class SizedMat:
    """A ``rows × cols`` matrix (sizes may be symbolic) given by its entry function."""

    __slots__ = ("rows", "cols", "entry")

    def __init__(self, rows, cols, entry: Callable):
        self.rows, self.cols, self.entry = sympy.sympify(rows), sympy.sympify(cols), entry

    def __call__(self, i, j):
        return self.entry(i, j)

    @property
    def shape(self):
        return (self.rows, self.cols)

    def __repr__(self):
        return f"SizedMat({self.rows}×{self.cols})"


def entries(name: str, rows, cols) -> SizedMat:
    """The matrix of IndexedBase entries ``name[i, j]`` (``name[i]`` for a column vector)."""
    base = sympy.IndexedBase(name)
    if cols == 1:
        return SizedMat(rows, cols, lambda i, j: base[i])
    return SizedMat(rows, cols, lambda i, j: base[i, j])


class ShapeMismatch(ValueError):
    """Two sized matrices that an operation combines have different shapes."""


def _same(x, y) -> bool:
    return sympy.simplify(x - y) == 0


def _zip(op, a, b, fn):
    """Elementwise ``fn``; scalars broadcast, and so do a row (1 × n) or a column (m × 1) against
    an m × n matrix — only when that dimension is literally 1."""
    if not isinstance(a, SizedMat) and not isinstance(b, SizedMat):
        return fn(a, b)
    if not isinstance(a, SizedMat):
        return SizedMat(b.rows, b.cols, lambda i, j: fn(a, b(i, j)))
    if not isinstance(b, SizedMat):
        return SizedMat(a.rows, a.cols, lambda i, j: fn(a(i, j), b))
    if _same(a.rows, b.rows) and _same(a.cols, b.cols):
        return SizedMat(a.rows, a.cols, lambda i, j: fn(a(i, j), b(i, j)))
    for small, large, swap in ((a, b, False), (b, a, True)):
        rows_ok = small.rows == 1 or _same(small.rows, large.rows)
        cols_ok = small.cols == 1 or _same(small.cols, large.cols)
        if rows_ok and cols_ok:
            def at(i, j, small=small):
                return small(0 if small.rows == 1 else i, 0 if small.cols == 1 else j)

            if swap:
                return SizedMat(large.rows, large.cols, lambda i, j: fn(large(i, j), at(i, j)))
            return SizedMat(large.rows, large.cols, lambda i, j: fn(at(i, j), large(i, j)))
    raise ShapeMismatch(f"{op} of a {a.rows}×{a.cols} and a {b.rows}×{b.cols} matrix")


class Sized(Elementwise):
    """The matrix algebra of ``matrices.Explicit`` over matrices of symbolic size."""

    _zip = staticmethod(_zip)

    def __init__(self, layout: str = "columns"):
        if layout not in ("columns", "rows"):
            raise ValueError(f"layout must be 'columns' or 'rows', not {layout!r}")
        self.layout = layout

    def matmul(self, a: SizedMat, b: SizedMat) -> SizedMat:
        if sympy.simplify(a.cols - b.rows) != 0:
            raise ShapeMismatch(f"product of a {a.rows}×{a.cols} and a {b.rows}×{b.cols} matrix")
        return SizedMat(a.rows, b.cols, lambda i, j: summation(lambda l: a(i, l) * b(l, j), a.cols))

    def T(self, a: SizedMat) -> SizedMat:
        return SizedMat(a.cols, a.rows, lambda i, j: a(j, i))

    def scale(self, c, a):
        c = sympy.sympify(c)
        return SizedMat(a.rows, a.cols, lambda i, j: c * a(i, j)) if isinstance(a, SizedMat) else c * a

    def apply(self, fn: Callable, a: SizedMat) -> SizedMat:
        return SizedMat(a.rows, a.cols, lambda i, j: fn(a(i, j)))

    def log(self, a: SizedMat) -> SizedMat:
        return self.apply(sympy.log, a)

    def exp(self, a):
        return self.apply(sympy.exp, a) if isinstance(a, SizedMat) else sympy.exp(a)

    def power(self, a, p):
        p = sympy.sympify(p)
        return self.apply(lambda e: e ** p, a) if isinstance(a, SizedMat) else a ** p

    def shape(self, a) -> tuple:
        return a.shape if isinstance(a, SizedMat) else (Integer(1), Integer(1))

    def maximum(self, a, b):
        """max(a, b) = b + relu(a − b), as in ``matrices.Explicit``."""
        from .rules import ACTIVATIONS

        relu = ACTIVATIONS["relu"].atom
        return self._zip("elementwise maximum", a, b, lambda x, y: y + relu(x - y))

    def sum_axis(self, a: SizedMat, axis: int) -> SizedMat:
        if axis == 0:
            return SizedMat(1, a.cols, lambda i, j: summation(lambda l: a(l, j), a.rows))
        return SizedMat(a.rows, 1, lambda i, j: summation(lambda l: a(i, l), a.cols))

    def build(self, rows, cols, entry) -> SizedMat:
        return SizedMat(rows, cols, entry)

    def entry(self, a, i, j):
        return a(i, j) if isinstance(a, SizedMat) else a

    def index_sum(self, body, count):
        return summation(body, count)

    def padded_entry(self, a, i, j):
        """a(i, j) where 0 ≤ i < rows and 0 ≤ j < cols, else 0: Σ_r Σ_c δ(r, i)·δ(c, j)·a(r, c), a
        sum the decider collapses with the range condition it implies."""
        if not isinstance(a, SizedMat):
            return a
        if a.cols == 1:
            return summation(lambda r: KroneckerDelta(r, i) * a(r, 0), a.rows) if j == 0 else Integer(0)
        return summation(lambda r: summation(lambda c: KroneckerDelta(r, i) * KroneckerDelta(c, j) * a(r, c),
                                             a.cols), a.rows)

    def full(self, value, like: SizedMat) -> SizedMat:
        return SizedMat(like.rows, like.cols, lambda i, j: Integer(value))

    def ones(self, rows, cols=1) -> SizedMat:
        return SizedMat(rows, cols, lambda i, j: Integer(1))

    def total(self, a: SizedMat):
        return summation(lambda i: summation(lambda j: a(i, j), a.cols), a.rows)

    def examples(self, a: SizedMat):
        return a.cols if self.layout == "columns" else a.rows

    def output_width(self, a: SizedMat):
        return a.rows if self.layout == "columns" else a.cols

    def example(self, a: SizedMat, e) -> SizedMat:
        """Example ``e`` as a column (its units down the rows), whatever the layout."""
        if self.layout == "columns":
            return SizedMat(a.rows, 1, lambda i, _: a(i, e))
        return SizedMat(a.cols, 1, lambda i, _: a(e, i))

    def example_sums(self, a: SizedMat) -> SizedMat:
        if self.layout == "columns":
            return SizedMat(a.rows, a.cols, lambda i, j: summation(lambda l: a(l, j), a.rows))
        return SizedMat(a.rows, a.cols, lambda i, j: summation(lambda l: a(i, l), a.cols))

    def affine(self, W: SizedMat, A: SizedMat, b: SizedMat) -> SizedMat:
        if self.layout == "columns":
            product = self.matmul(W, A)
            return SizedMat(product.rows, product.cols, lambda i, j: product(i, j) + b(i, 0))
        product = self.matmul(A, self.T(W))
        return SizedMat(product.rows, product.cols, lambda i, j: product(i, j) + b(j, 0))

    def softmax(self, Z: SizedMat, atom=None) -> SizedMat:
        """softmax by its definition eᶻⁱ / Σ_l eᶻˡ over each example (``atom`` is not used)."""
        if self.layout == "columns":
            return SizedMat(Z.rows, Z.cols, lambda i, j: sympy.exp(Z(i, j)) / summation(
                lambda l: sympy.exp(Z(l, j)), Z.rows))
        return SizedMat(Z.rows, Z.cols, lambda i, j: sympy.exp(Z(i, j)) / summation(
            lambda l: sympy.exp(Z(i, l)), Z.cols))


# ------------------------------------------------------------- arbitrary downstream functions


class Gradient(sympy.Function):
    """∂φ/∂u[c]: a partial derivative of an arbitrary function φ, an opaque value.

    Arguments: ``(label, shown, k, c_1 … c_k, point…)``.  The k coordinates say which argument of
    φ; the point tells apart evaluations of the same φ at different places (one per example for
    a per-example loss); ``shown`` is the entry it is written as, e.g. ``a[i, e]``.  (Arguments
    are kept flat: SymPy's summation rebuilds nested ``Tuple`` arguments as lists.)
    """

    @classmethod
    def eval(cls, *args):
        return None

    @classmethod
    def of(cls, label, shown, coordinates, point=()):
        return cls(label, shown, Integer(len(coordinates)), *coordinates, *point)

    @property
    def label(self):
        return self.args[0]

    @property
    def coordinates(self) -> tuple:
        return self.args[3:3 + int(self.args[2])]

    def _sympystr(self, printer):
        return f"∂{printer._print(self.args[0])}/∂{printer._print(self.args[1])}"

    def _latex(self, printer, exp=None):
        body = rf"\frac{{\partial {printer._print(self.args[0])}}}{{\partial {printer._print(self.args[1])}}}"
        return rf"\left({body}\right)^{{{exp}}}" if exp else body


class Downstream(sympy.Function):
    """φ(U): an arbitrary differentiable function of every entry of a matrix of symbolic size.

    Arguments: ``(label, shown, entry, k, placeholder_1 … placeholder_k, size_1 … size_k, point…)``
    — ``entry`` is U's entry at the placeholder indices; ``shown`` is how one argument is written
    (placeholders print as ``:``).  Differentiating applies the chain rule
    Σ_c ∂φ/∂u[c] · ∂U[c]/∂s.
    """

    @classmethod
    def eval(cls, *args):
        return None

    @classmethod
    def of(cls, label, shown, entry, placeholders, sizes, point=()):
        return cls(label, shown, entry, Integer(len(placeholders)), *placeholders, *sizes, *point)

    def _parts(self):
        label, shown, entry, k = self.args[:4]
        k = int(k)
        return label, shown, entry, self.args[4:4 + k], self.args[4 + k:4 + 2 * k], self.args[4 + 2 * k:]

    def _eval_derivative(self, s):
        label, shown, entry, placeholders, sizes, point = self._parts()
        fresh = []
        for _ in placeholders:
            fresh.append(_fresh(Tuple(entry, shown, s), avoid=fresh))
        renaming = dict(zip(placeholders, fresh))
        partial = Gradient.of(label, shown.xreplace(renaming), fresh, point)
        body = partial * sympy.diff(entry.xreplace(renaming), s)
        return Sum(body, *[(c, 0, n - 1) for c, n in zip(fresh, sizes)])

    def _sympystr(self, printer):
        label, shown, _, placeholders, _, _ = self._parts()
        colon = {p: Symbol(":") for p in placeholders}
        return f"{printer._print(label)}({printer._print(shown.xreplace(colon))})"

    def _latex(self, printer, exp=None):
        label, shown, _, placeholders, _, _ = self._parts()
        colon = {p: Symbol(":") for p in placeholders}
        body = rf"{printer._print(label)}\left({printer._print(shown.xreplace(colon))}\right)"
        return rf"{body}^{{{exp}}}" if exp else body


def arbitrary_function(label: str, shown: str, U: SizedMat) -> tuple:
    """φ(U) for an arbitrary differentiable φ of all of U's entries, and the matrix of its partials."""
    placeholders = (sympy.Dummy("c", integer=True), sympy.Dummy("d", integer=True))
    base, name = sympy.IndexedBase(shown), Symbol(label)
    phi = Downstream.of(name, base[placeholders], U(*placeholders), placeholders, (U.rows, U.cols))
    partials = SizedMat(U.rows, U.cols, lambda i, j: Gradient.of(name, base[i, j], (i, j)))
    return phi, partials


def per_example_function(alg: Sized, label: str, shown: str, U: SizedMat) -> tuple:
    """Σ_e ψ(U_e) for an arbitrary differentiable ψ of one example, and ψ's partials at each example."""
    base, name = sympy.IndexedBase(shown), Symbol(label)
    columns = alg.layout == "columns"

    def written(unit, e):
        return base[unit, e] if columns else base[e, unit]

    def term(e):
        c = sympy.Dummy("c", integer=True)
        column = alg.example(U, e)
        return Downstream.of(name, written(c, e), column(c, 0), (c,), (column.rows,), (e,))

    def partial(i, j):
        unit, e = (i, j) if columns else (j, i)
        return Gradient.of(name, written(unit, e), (unit,), (e,))

    return summation(term, alg.examples(U)), SizedMat(U.rows, U.cols, partial)


# ----------------------------------------------------------------------------- deciding zero


def _nonnegative(expr, ranges) -> bool:
    """expr ≥ 0 for every index in its range: linear in each index, so check both ends."""
    for variable, (low, high) in ranges.items():
        if expr.has(variable):
            try:
                if sympy.degree(expr, variable) > 1:
                    return False
            except sympy.PolynomialError:
                return False
            return all(_nonnegative(sympy.expand(expr.subs(variable, end)), ranges) for end in (low, high))
    return bool(expr.is_nonnegative)


def _implied(condition, ranges) -> bool:
    if condition is sympy.true:
        return True
    if isinstance(condition, And):
        return all(_implied(part, ranges) for part in condition.args)
    if not isinstance(condition, Relational):
        return False
    if condition.rel_op in (">=", ">"):
        slack = condition.lhs - condition.rhs
    elif condition.rel_op in ("<=", "<"):
        slack = condition.rhs - condition.lhs
    else:
        return False
    if condition.rel_op in (">", "<"):
        slack -= 1  # integers
    return _nonnegative(sympy.expand(slack), ranges)


def _discharge(expr, ranges):
    """Replace each Piecewise whose first condition the index ranges imply by its first branch."""
    if isinstance(expr, Sum):
        inner = dict(ranges)
        for variable, low, high in expr.limits:
            inner[variable] = (low, high)
        return expr.func(_discharge(expr.function, inner), *expr.limits)
    if isinstance(expr, Piecewise):
        value, condition = expr.args[0]
        if _implied(condition, ranges):
            return _discharge(value, ranges)
        return expr.func(*[(_discharge(v, ranges), c) for v, c in expr.args])
    if not expr.args:
        return expr
    return expr.func(*[_discharge(a, ranges) for a in expr.args])


def _sum_over(body, variable, low, high):
    """Σ_{variable=low}^{high} body, term by term: factors free of the variable go outside, and
    Σ_v δ(v, w)·f(v) = f(w) if low ≤ w ≤ high — the one summation the proofs need.

    (SymPy's ``Sum.doit`` also tries closed forms — Gosper, hypergeometric terms — on every sum
    of opaque entries, which costs seconds and never succeeds here.)
    """
    if sympy.sympify(high - low) == 0:  # a sum of one term (a column's one column index)
        return body.xreplace({variable: low})
    body = body.replace(lambda x: x.is_Pow and isinstance(x.base, KroneckerDelta) and x.exp.is_positive,
                        lambda x: x.base)
    if any(delta.has(variable) for delta in body.atoms(KroneckerDelta)):
        body = sympy.expand(body)
    terms = []
    for term in Add.make_args(body):
        factors = Mul.make_args(term)
        free = [f for f in factors if not f.has(variable)]
        bound = [f for f in factors if f.has(variable)]
        delta, other = None, None
        for f in bound:
            if isinstance(f, KroneckerDelta) and len(f.args) == 2:
                other = _solved(f.args[0] - f.args[1], variable)
                if other is not None:
                    delta = f
                    break
        if delta is not None:
            rest = Mul(*[f for f in bound if f is not delta]).xreplace({variable: other})
            terms.append(Mul(*free) * Piecewise((rest, And(low <= other, other <= high)), (0, True)))
        elif bound:
            terms.append(Mul(*free) * Sum(Mul(*bound), (variable, low, high)))
        else:
            terms.append(term * (high - low + 1))
    return Add(*terms)


def _solved(difference, variable):
    """The value of ``variable`` where ``difference`` (linear in it, coefficient ±1) is 0, or None:
    δ(v + c, w) = δ(v, w − c), so Σ_v δ(v + c, w)·f(v) = f(w − c) where low ≤ w − c ≤ high."""
    difference = sympy.expand(difference)
    coefficient = difference.coeff(variable)
    rest = sympy.expand(difference - coefficient * variable)
    if coefficient not in (1, -1) or rest.has(variable):
        return None
    return -rest / coefficient


def _kronecker_sums(expr):
    """Every Sum taken index by index (innermost first) with :func:`_sum_over`."""
    if isinstance(expr, Sum):
        body = _kronecker_sums(expr.function)
        for variable, low, high in expr.limits:
            body = _sum_over(body, variable, low, high)
        return body
    if not expr.args:
        return expr
    return expr.func(*[_kronecker_sums(a) for a in expr.args])


def _derivatives(expr):
    """Carry out every ``Derivative`` (the chain rule, Sum by Sum) without evaluating any sum."""
    found = expr.atoms(sympy.Derivative)
    return expr.xreplace({d: d.doit(deep=False) for d in found}) if found else expr


def _fold(expr):
    """``piecewise_fold`` that never moves a condition on a summation index out of its Sum.

    (SymPy's ``piecewise_fold`` treats a Sum like any function of its arguments and pulls a
    Piecewise out of the summand even when its condition depends on the bound index, which
    leaves that index free.)  A Piecewise whose conditions are free of the Sum's indices is
    still pulled out: Σ_v Piecewise((f_k(v), c_k)) = Piecewise((Σ_v f_k(v), c_k))."""
    if isinstance(expr, Sum):
        body = _fold(expr.function)
        variables = {limit[0] for limit in expr.limits}
        if isinstance(body, Piecewise) and not any(c.free_symbols & variables for _, c in body.args):
            return Piecewise(*[(Sum(value, *expr.limits), c) for value, c in body.args])
        return Sum(body, *expr.limits)
    if not expr.args or not expr.has(Piecewise):
        return expr
    hidden: dict = {}

    def hide(node):
        if isinstance(node, Sum):
            placeholder = sympy.Dummy("sum")
            hidden[placeholder] = _fold(node)
            return placeholder
        if not node.args or not node.has(Sum):
            return node
        return node.func(*[hide(a) for a in node.args])

    folded = sympy.piecewise_fold(hide(expr))
    if any(isinstance(value, Piecewise) for value in hidden.values()):
        return _fold(folded.xreplace(hidden))  # sums that became Piecewise: fold again, guarded the same way
    return folded.xreplace(hidden)


def _within(expr, low, high, ranges) -> bool:
    """low ≤ expr ≤ high for every index in its range."""
    return _nonnegative(sympy.expand(expr - low), ranges) and _nonnegative(sympy.expand(high - expr), ranges)


def _moduli(expr):
    """Candidate moduli m of ``expr`` = m·A + B: its positive integer symbols (sizes) and the integer
    coefficients ≥ 2 of its terms."""
    found = [s for s in expr.free_symbols if s.is_integer and s.is_positive]
    for term in Add.make_args(expr):
        coefficient = term.as_coeff_Mul()[0]
        if coefficient.is_Integer and abs(coefficient) >= 2:
            found.append(abs(coefficient))
    return sorted(set(found), key=sympy.default_sort_key)


def _split(expr, m):
    """(A, B) with expr = m·A + B, B the terms m does not divide (integers A, B), or None."""
    expr = sympy.expand(expr)
    if isinstance(m, Symbol):
        remainder = expr.xreplace({m: Integer(0)})
        quotient = sympy.expand((expr - remainder) / m)
    else:
        divisible = [t for t in Add.make_args(expr) if (t.as_coeff_Mul()[0] % m) == 0]
        quotient, remainder = sympy.expand(Add(*divisible) / m), sympy.expand(expr - Add(*divisible))
    if sympy.fraction(sympy.together(quotient))[1] != 1 or not quotient.is_integer or not remainder.is_integer:
        return None
    return quotient, remainder


def _residues(expr, ranges):
    """Integer arithmetic the index ranges decide, each rule an identity for integers:

    * δ(x, y) = δ(A, 0)·δ(B, 0) where x − y = m·A + B with m > 0 and |B| ≤ m − 1 (m·A = −B forces
      A = 0, since |m·A| < m): a window's offset and its position, δ(p·i + a, p·I + U) = δ(i, I)·δ(a, U);
    * ⌊(m·A + B)/m⌋ = A and (m·A + B) mod m = B where 0 ≤ B ≤ m − 1.

    ``ranges`` grows by each enclosing Sum's limits, as in :func:`_discharge`."""
    if isinstance(expr, Sum):
        inner = dict(ranges)
        for variable, low, high in expr.limits:
            inner[variable] = (low, high)
        return expr.func(_residues(expr.function, inner), *expr.limits)
    if not expr.args:
        return expr
    args = [_residues(a, ranges) for a in expr.args]
    expr = expr.func(*args) if args != list(expr.args) else expr
    if isinstance(expr, KroneckerDelta) and len(expr.args) == 2:
        difference = sympy.expand(expr.args[0] - expr.args[1])
        for m in _moduli(difference):
            parts = _split(difference, m)
            if parts is None or parts[0] == 0:
                continue
            quotient, remainder = parts
            if _within(remainder, -(m - 1), m - 1, ranges):
                return KroneckerDelta(quotient, 0) * KroneckerDelta(remainder, 0)
    if isinstance(expr, sympy.floor):
        numerator, denominator = sympy.fraction(sympy.together(expr.args[0]))
        if denominator.is_integer and denominator.is_positive and (denominator.is_Symbol or denominator.is_Integer):
            parts = _split(numerator, denominator)
            if parts is not None and _within(parts[1], 0, denominator - 1, ranges):
                return parts[0]
    if isinstance(expr, sympy.Mod):
        value, m = expr.args
        if m.is_integer and m.is_positive and (m.is_Symbol or m.is_Integer):
            parts = _split(value, m)
            if parts is not None and _within(parts[1], 0, m - 1, ranges):
                return parts[1]
    return expr


def collapse(expr, ranges: dict, rounds: int = 8):
    """Carry out derivatives and Kronecker sums; discharge the range conditions they leave."""
    for _ in range(rounds):
        budget.check()
        new = _discharge(_fold(_kronecker_sums(_residues(_derivatives(expr), ranges))), ranges)
        if new == expr:
            break
        expr = new
    return expr


def _canonical_factor(factor):
    """(sign, factor) with the factor's base normalised up to sign (u − v and v − u agree)."""
    base, exponent = factor.as_base_exp()
    if exponent.is_Integer and base.could_extract_minus_sign():
        return (-1) ** int(exponent), (-base) ** exponent
    return 1, factor


def _closed_sum(body, variable, low, high):
    name = _fresh(body)
    return Sum(body.xreplace({variable: name}), (name, low, high))


def canonical_sums(expr):
    """Every Sum split into terms, with index-free factors pulled out and its index renamed canonically."""
    if isinstance(expr, Sum):
        budget.check()
        (variable, low, high), rest = expr.limits[0], expr.limits[1:]
        body = Sum(expr.function, *rest) if rest else expr.function
        k = sympy.Dummy("k", integer=True)
        body = sympy.cancel(sympy.together(canonical_sums(body.xreplace({variable: k}))))
        numerator, denominator = sympy.fraction(body)
        free, bound, sign = [], [], 1
        for factor in Mul.make_args(sympy.factor(denominator)):
            if factor.has(k):
                flip, factor = _canonical_factor(factor)
                sign *= flip
                bound.append(factor)
            else:
                free.append(factor)
        free_denominator, bound_denominator = Mul(*free) * sign, Mul(*bound)
        terms = []
        for term in Add.make_args(sympy.expand(numerator)):
            coefficient, dependent = [], []
            for factor in Mul.make_args(term):
                (dependent if factor.has(k) else coefficient).append(factor)
            inner = Mul(*dependent) / bound_denominator
            summed = _closed_sum(inner, k, low, high) if inner.has(k) else inner * (high - low + 1)
            terms.append(Mul(*coefficient) / free_denominator * summed)
        return Add(*terms)
    if not expr.args:
        return expr
    return expr.func(*[canonical_sums(a) for a in expr.args])


def _top_sums(term):
    """The Sum factors (to the first power) of a product, most complex summand first."""
    found = [f for f in Mul.make_args(term) if isinstance(f, Sum) and len(f.limits) == 1]
    return sorted(found, key=lambda s: (-sympy.count_ops(s.function), sympy.default_sort_key(s)))


def _merged(numerator, ranges):
    """Σ_l F(l) equal to ``numerator`` (F over the most frequent range of sums), or None."""
    terms = Add.make_args(sympy.expand(numerator))
    counts: dict = {}
    for term in terms:
        for s in _top_sums(term):
            key = tuple(s.limits[0][1:])
            counts[key] = counts.get(key, 0) + 1
    if not counts:
        return None
    low, high = max(counts, key=lambda key: (counts[key], sympy.default_sort_key(Tuple(*key))))
    k = _fresh(numerator, avoid=list(ranges))
    opened = []
    for term in terms:
        chosen = next((s for s in _top_sums(term) if tuple(s.limits[0][1:]) == (low, high)), None)
        if chosen is None:
            opened.append(term / (high - low + 1))
        else:
            variable = chosen.limits[0][0]
            opened.append(term / chosen * chosen.function.xreplace({variable: k}))
    return k, (low, high), Add(*opened)


def readable(expr):
    """``expr`` for a reader: sums over one range with the same coefficient merged, Σ(a − b) for Σa − Σb."""
    numerator, denominator = sympy.fraction(sympy.together(expr))
    groups: dict = {}
    rest = []
    for term in Add.make_args(sympy.expand(numerator)):
        sums = [f for f in Mul.make_args(term) if isinstance(f, Sum) and len(f.limits) == 1]
        if len(sums) != 1:
            rest.append(term)
            continue
        coefficient, (_, low, high) = term / sums[0], sums[0].limits[0]
        sign = -1 if coefficient.could_extract_minus_sign() else 1
        groups.setdefault((sign * coefficient, low, high), []).append((sign, sums[0]))
    k = sympy.Dummy("k", integer=True)
    for (coefficient, low, high), group in groups.items():
        body = Add(*[sign * s.function.xreplace({s.limits[0][0]: k}) for sign, s in group])
        rest.append(coefficient * _closed_sum(sympy.factor_terms(body), k, low, high))
    return sympy.factor_terms(Add(*rest)) / denominator


def normal_form(expr, ranges: dict, hypotheses: dict | None = None):
    """The residual of ``expr`` after collapsing, canonical sums, the hypotheses and cancel."""
    expr = canonical_sums(collapse(sympy.sympify(expr), ranges))
    if hypotheses:
        expr = expr.xreplace({canonical_sums(k): v for k, v in hypotheses.items()})
    budget.check()
    return sympy.cancel(sympy.together(expr))


def decide_zero(expr, ranges: dict, hypotheses: dict | None = None, merges: int = 2):
    """(True, 0) if ``expr`` is 0 for every size and every index in ``ranges``; else (False, residual).

    ``ranges`` maps each free index to its (low, high); ``hypotheses`` maps expressions (such as
    a target column's sum) to the values they are assumed to take.
    """
    residual = normal_form(expr, ranges, hypotheses)
    if residual == 0:
        return True, residual
    candidate, scope = residual, dict(ranges)
    for _ in range(merges):
        merged = _merged(sympy.fraction(candidate)[0], scope)
        if merged is None:
            break
        k, span, body = merged
        scope[k] = span
        candidate = normal_form(body, scope, hypotheses)
        if candidate == 0:
            return True, candidate
    return False, residual
