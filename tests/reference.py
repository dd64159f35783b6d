"""Independent re-evaluation of counterexamples, sharing nothing with the prover's evaluator.

Atoms are replaced by their elementary definitions (SymPy's own exp, Max, …), the expression is
compiled with ``lambdify`` to mpmath at 60 digits, and the true derivative is taken by mpmath's
numerical differentiation.  A reported counterexample must agree with this to ~30 digits.
"""

from __future__ import annotations

from fractions import Fraction

import mpmath
import sympy

from symbackprop import rules
from symbackprop.prove import elementary

DIGITS = 60


def parse_value(text: str) -> mpmath.mpf:
    """A reported value: an exact fraction "p/q" or an interval "mid ± radius"."""
    with mpmath.workdps(DIGITS):
        if "±" in text:
            return mpmath.mpf(text.split("±")[0].strip())
        value = Fraction(text)
        return mpmath.mpf(value.numerator) / value.denominator


def _point(net, counterexample) -> dict:
    by_name = {str(s): s for s, _ in net.variables}
    point = {by_name[name]: Fraction(value) for name, value in counterexample["point"].items()}
    point.update({eps: Fraction(0) for eps in net.perturbation})
    return point


def concrete(expr, functions: dict):
    """Atoms replaced by definitions; generic functions g by the witness's polynomial (g′ by its derivative)."""
    expr = elementary(expr)
    x = sympy.Symbol("x")
    while expr.atoms(rules.Atom):  # nested atoms: replace the innermost first, then again
        mapping = {}
        for atom in expr.atoms(rules.Atom):
            if atom.args[0].atoms(rules.Atom):
                continue
            name = atom.rule.name
            base = atom.rule.derivative_of.name if atom.rule.derivative_of is not None else name
            polynomial = sympy.sympify(functions[base], locals={"x": x})  # test code: our own witness text
            if atom.rule.derivative_of is not None:
                polynomial = sympy.diff(polynomial, x)
            mapping[atom] = polynomial.subs(x, atom.args[0])
        expr = expr.xreplace(mapping)
    return expr


def value_at(expr, point: dict, functions=None) -> mpmath.mpf:
    """``expr`` (atoms allowed) at an exact point, by SymPy substitution and 60-digit evalf."""
    with mpmath.workdps(DIGITS):
        exact = concrete(expr, functions or {}).xreplace(
            {s: sympy.Rational(v.numerator, v.denominator) for s, v in point.items()})
        return mpmath.mpf(sympy.N(exact, DIGITS))


def derivative_at(expr, wrt, point: dict, functions=None) -> mpmath.mpf:
    """d expr / d wrt at the point, by mpmath's numerical differentiation of a lambdified function.

    Saturated units can make a derivative 10⁻⁶⁰ times the loss; differencing then needs far more
    digits than the values themselves, hence the working precision here."""
    with mpmath.workdps(4 * DIGITS):
        others = {s: sympy.Rational(v.numerator, v.denominator) for s, v in point.items() if s != wrt}
        t = sympy.Symbol("t_reference")
        function = sympy.lambdify(t, concrete(expr, functions or {}).xreplace({**others, wrt: t}), modules="mpmath")
        x0 = point[wrt]
        return mpmath.diff(function, mpmath.mpf(x0.numerator) / x0.denominator)


def check_counterexample(net, truth, claimed, counterexample) -> None:
    """Assert the counterexample is real: both values re-evaluated independently, and they differ."""
    i, j = (int(part) - 1 for part in counterexample["entry"].strip("[]").split(","))
    point = _point(net, counterexample)
    partial = truth[i, j]
    functions = counterexample.get("functions", {})
    true_value = derivative_at(partial.f, partial.wrt, point, functions)
    claimed_value = value_at(claimed[i, j], point, functions)
    with mpmath.workdps(DIGITS):
        reported_lhs = parse_value(counterexample["lhs"])
        reported_rhs = parse_value(counterexample["rhs"])
        scale = max(abs(true_value), abs(claimed_value))  # relative: values may be tiny but exact
        assert abs(true_value - reported_lhs) <= mpmath.mpf(10) ** -20 * scale, (true_value, reported_lhs)
        assert abs(claimed_value - reported_rhs) <= mpmath.mpf(10) ** -20 * scale, (claimed_value, reported_rhs)
        assert abs(true_value - claimed_value) > mpmath.mpf(10) ** -15 * scale, (true_value, claimed_value)
