"""One memoised walk over SymPy expression DAGs, for exact algebra and for certified numbers.

``Expr.diff`` walks the expression *tree*, whose size grows like n^L·m; networks are DAGs, so
every walk here is memoised on nodes.  The same :class:`Evaluation` computes values and
derivatives (forward mode, the chain rule node by node — what ``diff`` computes) in any of three
domains:

* :class:`RingDomain` — exact rational functions with every atom (σ(z), tanh(z), eᶻ, log u…) a
  free generator.  A zero there is a proof; see ``polys``.
* :class:`ExactDomain` — exact ``Fraction`` arithmetic at a rational point (piecewise-linear nets).
* :class:`IntervalDomain` — mpmath interval arithmetic at a rational point, for certified
  counterexamples when transcendental atoms occur.

:class:`Partial` is the derivative as an expression node, so a claimed formula and the true
gradient are compared by the same machinery.
"""

from __future__ import annotations

from fractions import Fraction

import mpmath
import sympy
from sympy import Add, Mul, Pow

from . import budget
from .polys import FIELD, Frac, Ring, generators_of, poly_content
from .rules import EXP, Atom, NotRational


class Unsupported(ValueError):
    """The expression uses something the evaluator cannot handle (it is then undecided)."""


class Partial(sympy.Expr):
    """∂f/∂θ as an unevaluated node; ``label`` names f for printing."""

    is_commutative = True

    def __new__(cls, f, wrt, label):
        return sympy.Expr.__new__(cls, sympy.sympify(f), wrt, label)

    @property
    def f(self):
        return self.args[0]

    @property
    def wrt(self):
        return self.args[1]

    @property
    def label(self):
        return self.args[2]

    def _sympystr(self, printer):
        return f"∂{printer._print(self.label)}/∂{printer._print(self.wrt)}"


# -------------------------------------------------------------------------------- domains


class RingDomain:
    """Exact rational functions over ℚ; atoms become generators keyed by (rule, argument)."""

    exact = True

    def __init__(self):
        self.ring = Ring()
        self.atom_of_generator: dict[int, tuple] = {}  # generator index -> (rule, atom node)
        r = self.ring
        self.zero, self.one = r.zero, r.one
        self.exp_arguments: dict[int, Frac] = {}  # generator index of eᵘ -> u
        self.roots: dict[int, tuple] = {}  # generator index of t = b^(1/q) -> (q, b)
        self.positive_symbols: set = set()
        self.add, self.sub, self.neg, self.mul = r.add, r.sub, r.neg, r.mul
        self.power, self.divide = r.power, r.divide

    def const(self, value: Fraction) -> Frac:
        return self.ring.const(value)

    def symbol(self, symbol) -> Frac:
        return self.ring.generator(("symbol", symbol))

    def atom(self, rule, arguments: tuple, indices: tuple = (), node=None) -> Frac:
        if rule.key == EXP.key:
            return self._exp(arguments[0], node)
        key = (rule.key, indices, tuple(self.ring.key(a) for a in arguments))
        value = self.ring.generator(key)
        self.atom_of_generator.setdefault(self.ring.generator_index[key], (rule, node))
        return value

    def _exp(self, argument: Frac, node) -> Frac:
        """exp(c·u) = exp(u)^c for an integer c (the argument's content, signed): so that
        exp(−z) is 1/exp(z) and exp(2z) is exp(z)², not unrelated generators."""
        c = 1
        if argument.num and argument.den == 1 and not argument.factors:
            c = poly_content(argument.num)
            if argument.num[max(argument.num)] < 0:
                c = -c
        base = argument if c == 1 else Frac({m: k // c for m, k in argument.num.items()}, 1, (), argument.degree)
        key = (EXP.key, (), (self.ring.key(base),))
        generator = self.ring.generator(key)
        self.atom_of_generator.setdefault(self.ring.generator_index[key], (EXP, node))
        self.exp_arguments.setdefault(self.ring.generator_index[key], base)
        return generator if c == 1 else self.ring.power(generator, c)

    def log(self, argument: Frac) -> Frac:
        """log of a value that is positive wherever it is defined.  Split off what is known to be
        positive — a positive rational constant, powers of positive generators (eᵘ, whose log is
        u; b^(1/q), whose log is (1/q)·log b; σ, softmax …), and numerator or denominator
        polynomials with positive coefficients in positive generators — each getting its own
        log; what remains (positive, as the quotient of positives) is one opaque generator."""
        ring = self.ring
        total = ring.zero
        rest = argument
        # a single-term numerator: constant × monomial
        if len(argument.num) == 1:
            ((mono, coeff),) = argument.num.items()
            positives = {i: e for i, e in _exponents(mono).items() if self.is_positive(i)}
            if coeff > 0:
                total = ring.add(total, self._log_constant(Fraction(coeff)))
                rest = Frac({mono: 1}, argument.den, argument.factors, argument.degree)
            for i, e in positives.items():
                total = ring.add(total, ring.mul(ring.const(e), self._log_generator(i)))
                rest = ring.divide(rest, ring.power(Frac({1 << (FIELD * i): 1}, degree=1), e))
        if rest.den != 1:
            total = ring.sub(total, self._log_constant(Fraction(rest.den)))
            rest = Frac(rest.num, 1, rest.factors, rest.degree)
        kept = []
        for f, e in rest.factors:
            poly = ring.factor_polys[f]
            if self._manifestly_positive(poly):
                total = ring.sub(total, ring.mul(ring.const(e), self._log_poly(poly)))
            else:
                kept.append((f, e))
        rest = Frac(rest.num, 1, tuple(kept), rest.degree)
        if len(rest.num) > 1 and self._manifestly_positive(rest.num) and not kept:
            return ring.add(total, self._log_poly(rest.num))
        if rest.num == {0: 1} and not kept:
            return total
        return ring.add(total, ring.generator(("log", ring.key(rest))))

    def _log_poly(self, poly: dict) -> Frac:
        content = poly_content(poly)
        normal = {m: c // content for m, c in poly.items()}
        value = self.ring.generator(("log", self.ring.key(Frac(normal))))
        return self.ring.add(value, self._log_constant(Fraction(content))) if content != 1 else value

    def _log_constant(self, value: Fraction) -> Frac:
        """log of a positive rational: Σ e·log p over its prime factors (log p are generators)."""
        total = self.ring.zero
        for n, sign in ((value.numerator, 1), (value.denominator, -1)):
            for prime, e in sympy.factorint(n).items():
                total = self.ring.add(total, self.ring.mul(self.ring.const(sign * e),
                                                           self.ring.generator(("log", prime))))
        return total

    def _log_generator(self, index: int) -> Frac:
        if index in self.exp_arguments:
            return self.exp_arguments[index]
        if index in self.roots:
            q, base = self.roots[index]
            return self.ring.mul(self.ring.const(Fraction(1, q)), self.log(base))
        return self.ring.generator(("log", self.ring.generator_keys[index]))

    def is_positive(self, index: int) -> bool:
        """Generators known to be positive: eᵘ, roots, atoms of positive functions, positive symbols."""
        if index in self.exp_arguments or index in self.roots:
            return True
        key = self.ring.generator_keys[index]
        if key[0] == "symbol":
            return key[1] in self.positive_symbols
        rule = self.atom_of_generator.get(index, (None, None))[0]
        return rule is not None and rule.positive

    def _manifestly_positive(self, poly: dict) -> bool:
        return all(c > 0 for c in poly.values()) and all(self.is_positive(i) for i in generators_of(poly))

    def root(self, base: Frac, exponent) -> Frac:
        """base^(p/q) = t^p with t = base^(1/q) a generator; :meth:`reduce` uses t^q = base."""
        exponent = Fraction(exponent)
        q = exponent.denominator
        key = ("root", self.ring.key(base), q)
        t = self.ring.generator(key)
        self.roots.setdefault(self.ring.generator_index[key], (q, base))
        return self.ring.power(t, exponent.numerator)

    def reduce(self, value: Frac) -> Frac:
        """Rewrite powers t^e of root generators with t^q = base until none has e ≥ q."""
        for _ in range(8):
            before = value
            for index in sorted(generators_of(value.num) & set(self.roots), reverse=True):
                q, base = self.roots[index]
                value = self.ring.reduce_power(value, index, q, base)
            if value is before or value.is_zero:
                return value
        return value

    def number(self, constant) -> Frac:
        """π or e: a positive generator (no algebraic relation is assumed)."""
        key = ("symbol", constant)
        value = self.ring.generator(key)
        self.positive_symbols.add(constant)
        return value

    def is_zero(self, value: Frac) -> bool:
        return value.is_zero


def _exponents(mono: int) -> dict:
    """{generator index: exponent} of a packed monomial."""
    found, index = {}, 0
    while mono:
        e = mono & ((1 << FIELD) - 1)
        if e:
            found[index] = e
        mono >>= FIELD
        index += 1
    return found


def polynomial_value(domain, coefficients, x):
    """Σ c_k x^k by Horner's rule, in the domain's own arithmetic."""
    total = domain.const(coefficients[-1])
    for c in reversed(coefficients[:-1]):
        total = domain.add(domain.mul(total, x), domain.const(c))
    return total


class _Operators:
    """Arithmetic by Python's operators, shared by the numeric domains (which evaluate at a
    point: every symbol has a value, and generic functions g are stood in for by polynomials)."""

    generic: dict = {}  # rule key -> polynomial coefficients standing in for a generic function

    def symbol(self, symbol):
        raise Unsupported(f"no value for {symbol}")

    def atom(self, rule, arguments, indices=(), node=None):
        if rule.key in self.generic:
            return polynomial_value(self, self.generic[rule.key], arguments[0])
        return self._atom(rule, arguments, indices)

    @staticmethod
    def add(a, b):
        return a + b

    @staticmethod
    def sub(a, b):
        return a - b

    @staticmethod
    def neg(a):
        return -a

    @staticmethod
    def mul(a, b):
        return a * b


class ExactDomain(_Operators):
    """Exact rational arithmetic; fails with NotRational on transcendental functions."""

    exact = True
    zero = Fraction(0)
    one = Fraction(1)

    def __init__(self, generic: dict | None = None):
        self.generic = generic or {}  # rule key -> polynomial coefficients standing in for it

    @staticmethod
    def const(value):
        return Fraction(value)

    @staticmethod
    def power(a, n):
        return a ** n

    @staticmethod
    def divide(a, b):
        if b == 0:
            raise ZeroDivisionError("division by zero at this point")
        return a / b

    def _atom(self, rule, arguments, indices):
        if rule.exact is None:
            raise NotRational(rule.name)
        return rule.exact(*indices, *arguments)

    def log(self, argument):
        raise NotRational("log")

    @staticmethod
    def number(constant):
        raise NotRational(str(constant))

    def root(self, base, exponent):
        raise NotRational("root")

    @staticmethod
    def is_zero(value):
        return value == 0


class IntervalDomain(_Operators):
    """mpmath intervals at a fixed high precision: every value is a certified enclosure."""

    exact = False
    PRECISION = 256

    def __init__(self, generic: dict | None = None):
        self.generic = generic or {}  # rule key -> polynomial coefficients standing in for it
        self.iv = mpmath.iv
        self.zero = self.iv.mpf(0)
        self.one = self.iv.mpf(1)

    def const(self, value):
        value = Fraction(value)
        return self.iv.mpf(value.numerator) / self.iv.mpf(value.denominator)

    @staticmethod
    def power(a, n):
        if n < 0:
            return IntervalDomain.divide(mpmath.iv.mpf(1), a ** (-n))
        return a ** n

    @staticmethod
    def divide(a, b):
        if 0 in b:
            raise ZeroDivisionError("a denominator's enclosure contains 0")
        return a / b

    def _atom(self, rule, arguments, indices):
        if rule.interval is None:
            raise Unsupported(f"no numeric form for {rule.name}")
        return rule.interval(*indices, *arguments)

    def number(self, constant):
        return self.iv.pi if constant == sympy.pi else self.iv.e

    def log(self, argument):
        if not argument.a > 0:
            raise ZeroDivisionError("log of a value that may be ≤ 0")
        return self.iv.log(argument)

    def root(self, base, exponent):
        if not base.a > 0:
            raise ZeroDivisionError("root of a value that may be ≤ 0")
        exponent = Fraction(exponent)
        return self.iv.exp(self.iv.log(base) * self.const(exponent))

    @staticmethod
    def is_zero(value):
        return value.a == 0 and value.b == 0


class NumpyDomain(_Operators):
    """Floating point on NumPy arrays (elementwise), for numeric evaluation of the same formulas."""

    exact = False
    zero = 0.0
    one = 1.0

    @staticmethod
    def const(value):
        return float(value)

    @staticmethod
    def power(a, n):
        return a ** float(n) if n < 0 else a ** n

    @staticmethod
    def divide(a, b):
        return a / b

    def _atom(self, rule, arguments, indices):
        if not rule.numpy:
            raise Unsupported(f"no NumPy form for {rule.name}")
        return numpy_function(rule)(*arguments)

    @staticmethod
    def number(constant):
        return float(constant)

    @staticmethod
    def log(argument):
        import numpy

        return numpy.log(argument)

    @staticmethod
    def root(base, exponent):
        return base ** float(exponent)


_numpy_functions: dict = {}


def numpy_function(rule):
    """The row's NumPy template ``rule.numpy`` (trusted table text, not user input) as a function."""
    function = _numpy_functions.get(rule)
    if function is None:
        import numpy

        function = eval("lambda x: " + rule.numpy.format(x="x"), {"np": numpy})  # noqa: S307
        _numpy_functions[rule] = function
    return function


class interval_precision:
    """Context manager: run with mpmath intervals at :attr:`IntervalDomain.PRECISION` bits."""

    def __enter__(self):
        self.saved = mpmath.iv.prec
        mpmath.iv.prec = IntervalDomain.PRECISION

    def __exit__(self, *exc):
        mpmath.iv.prec = self.saved


# ------------------------------------------------------------------------------ evaluation


class Evaluation:
    """Values and derivatives of SymPy expressions in one domain, memoised on DAG nodes.

    ``env`` maps symbols to domain values (perturbation symbols to 0, a point's coordinates to
    numbers); symbols not in ``env`` are handed to ``domain.symbol``.
    """

    def __init__(self, domain, env: dict | None = None):
        self.domain = domain
        self.env = env or {}
        self.values: dict = {}
        self.partials: dict = {}
        self.dependencies: dict = {}
        self.symbol_bits: dict = {}
        # (rule, width) of the atoms met; width is the vector length for softmax, else None
        self.rules_differentiated: set = set()  # their closed-form derivative was used
        self.rules_seen: set = set()

    # ---- values
    def value(self, node):
        try:
            return self.values[node]
        except KeyError:
            pass
        budget.check()
        result = self._value(node)
        self.values[node] = result
        return result

    def _value(self, node):
        d = self.domain
        if node.is_Symbol:
            if node in self.env:
                return self.env[node]
            return d.symbol(node)
        if node.is_Rational:
            return d.const(Fraction(int(node.p), int(node.q)))
        if isinstance(node, Add):
            args = node.args
            total = self.value(args[0])
            for arg in args[1:]:
                total = d.add(total, self.value(arg))
            return total
        if isinstance(node, Mul):
            args = node.args
            product = self.value(args[0])
            for arg in args[1:]:
                product = d.mul(product, self.value(arg))
            return product
        if isinstance(node, Pow):
            base, exponent = node.args
            if exponent.is_Integer:
                return d.power(self.value(base), int(exponent))  # n < 0: inverse first
            if exponent.is_Rational:
                return d.root(self.value(base), Fraction(int(exponent.p), int(exponent.q)))
            raise Unsupported(f"power with exponent {exponent}")
        if isinstance(node, Atom):
            rule = node.rule
            k = rule.index_args
            self.rules_seen.add((rule, len(node.args) - k if rule.vector else None))
            indices = tuple(int(a) for a in node.args[:k])
            return d.atom(rule, tuple(self.value(a) for a in node.args[k:]), indices, node)
        if isinstance(node, sympy.exp):
            self.rules_seen.add((EXP, None))
            return d.atom(EXP, (self.value(node.args[0]),), (), node)
        if isinstance(node, sympy.log):
            argument = node.args[0]
            if isinstance(argument, Atom) and argument.rule.unfold is not None and argument.rule.positive:
                argument = argument.rule.unfold(argument)  # log softmax_i(z) = z_i − log Σ eᶻ, …
            return d.log(self.value(argument))
        if isinstance(node, Partial):
            return self.derivative(node.f, node.wrt)
        if node in (sympy.pi, sympy.E):
            return d.number(node)
        if node.is_Float:
            return d.const(Fraction(str(node)))
        raise Unsupported(f"cannot evaluate {type(node).__name__}: {node}")

    # ---- dependencies (which symbols a node depends on), as bit sets
    def _bits(self, node) -> int:
        try:
            return self.dependencies[node]
        except KeyError:
            pass
        if node.is_Symbol:
            bit = self.symbol_bits.setdefault(node, 1 << len(self.symbol_bits))
            result = bit
        elif isinstance(node, Partial):
            result = self._bits(node.f)
        else:
            result = 0
            for arg in node.args:
                result |= self._bits(arg)
        self.dependencies[node] = result
        return result

    def depends(self, node, wrt) -> bool:
        bit = self.symbol_bits.get(wrt)
        if bit is None:  # no node seen so far contains wrt, else it would have a bit
            bit = self.symbol_bits[wrt] = 1 << len(self.symbol_bits)
        return bool(self._bits(node) & bit)

    # ---- derivatives (forward mode)
    def derivative(self, node, wrt):
        memo = self.partials.get(wrt)
        if memo is None:
            memo = self.partials[wrt] = {}
        try:
            return memo[node]
        except KeyError:
            pass
        budget.check()
        if not self.depends(node, wrt):
            result = self.domain.zero
        else:
            result = self._derivative(node, wrt)
        memo[node] = result
        return result

    def _derivative(self, node, wrt):
        d = self.domain
        if node.is_Symbol:
            return d.one if node == wrt else d.zero
        if isinstance(node, Add):
            total = d.zero
            for arg in node.args:
                if self.depends(arg, wrt):
                    total = d.add(total, self.derivative(arg, wrt))
            return total
        if isinstance(node, Mul):
            args = node.args
            total = d.zero
            for i, arg in enumerate(args):
                if not self.depends(arg, wrt):
                    continue
                term = self.derivative(arg, wrt)
                for j, other in enumerate(args):
                    if j != i:
                        term = d.mul(term, self.value(other))
                total = d.add(total, term)
            return total
        if isinstance(node, Pow):
            base, exponent = node.args
            if self.depends(exponent, wrt):
                raise Unsupported(f"derivative of a power with a variable exponent: {node}")
            inner = self.derivative(base, wrt)
            return d.mul(d.mul(self.value(exponent), self.value(Pow(base, exponent - 1))), inner)
        if isinstance(node, Atom):
            k = node.rule.index_args
            self.rules_differentiated.add((node.rule, len(node.args) - k if node.rule.vector else None))
            total = d.zero
            for position, arg in enumerate(node.args[k:], start=k + 1):
                if not self.depends(arg, wrt):
                    continue
                try:
                    closed_form = node.fdiff(position)
                except NotImplementedError as error:
                    raise Unsupported(str(error)) from None
                total = d.add(total, d.mul(self.value(closed_form), self.derivative(arg, wrt)))
            return total
        if isinstance(node, sympy.exp):
            self.rules_differentiated.add((EXP, None))
            return d.mul(self.value(node), self.derivative(node.args[0], wrt))
        if isinstance(node, sympy.log):
            argument = node.args[0]
            return d.divide(self.derivative(argument, wrt), self.value(argument))
        if isinstance(node, Partial):
            raise Unsupported("second derivatives are not supported")
        raise Unsupported(f"cannot differentiate {type(node).__name__}: {node}")

