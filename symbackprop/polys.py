"""Exact rational functions over ℚ, small and fast enough to decide zero on whole networks.

SymPy's ``Expr`` arithmetic is too slow to expand every gradient entry of a depth-4 network,
and its ``Poly`` packs one exponent per generator into a tuple, which is slow with hundreds of
generators.  Here a monomial is one Python integer holding an 8-bit field per generator
(exponent ≤ 127, the top bit of each field is a guard), so multiplying monomials is integer
addition.  Coefficients are Python integers; a fraction keeps one integer denominator and a
product of interned polynomial factors, so no gcd is ever needed to decide whether a value is 0.

Soundness rests on one fact: if the numerator is the zero polynomial, the value is zero wherever
the denominator factors do not vanish.  Nothing here ever approximates.
"""

from __future__ import annotations

from fractions import Fraction
from math import gcd

FIELD = 8
MAX_EXPONENT = (1 << (FIELD - 1)) - 1
FIELD_MASK = (1 << FIELD) - 1


class DegreeOverflow(ArithmeticError):
    """An exponent would not fit in a monomial field."""


# ---------------------------------------------------------------- polynomials as dicts
# A polynomial is a dict {monomial: nonzero int}.  Functions below never mutate arguments.


def poly_add(a: dict, b: dict, sign: int = 1) -> dict:
    if len(a) < len(b) and sign == 1:
        a, b = b, a
    result = dict(a)
    get = result.get
    for mono, coeff in b.items():
        value = get(mono, 0) + sign * coeff
        if value:
            result[mono] = value
        else:
            del result[mono]
    return result


def poly_mul(a: dict, b: dict) -> dict:
    if not a or not b:
        return {}
    if len(a) < len(b):
        a, b = b, a
    if len(b) == 1:
        ((mono_b, coeff_b),) = b.items()
        return {mono + mono_b: coeff * coeff_b for mono, coeff in a.items()}
    result: dict = {}
    get = result.get
    for mono_b, coeff_b in b.items():
        for mono_a, coeff_a in a.items():
            mono = mono_a + mono_b
            value = get(mono, 0) + coeff_a * coeff_b
            if value:
                result[mono] = value
            else:
                del result[mono]
    return result


def poly_scale(a: dict, factor: int) -> dict:
    if factor == 1:
        return a
    if factor == 0:
        return {}
    return {mono: coeff * factor for mono, coeff in a.items()}


def poly_pow(a: dict, n: int) -> dict:
    result = {0: 1}
    base = a
    while n:
        if n & 1:
            result = poly_mul(result, base)
        n >>= 1
        if n:
            base = poly_mul(base, base)
    return result


def poly_content(a: dict) -> int:
    g = 0
    for coeff in a.values():
        g = gcd(g, coeff)
        if g == 1:
            break
    return g


def exponent(mono: int, index: int) -> int:
    return (mono >> (FIELD * index)) & FIELD_MASK


def generators_of(a: dict) -> set[int]:
    """Indices of the generators that occur in ``a``."""
    found: set[int] = set()
    for mono in a:
        index = 0
        while mono:
            if mono & FIELD_MASK:
                found.add(index)
            mono >>= FIELD
            index += 1
    return found


def _divide_by_one_generator(numerator: dict, divisor: dict, index: int) -> dict | None:
    """Exact quotient when ``divisor`` is a polynomial in the single generator ``index``.

    Synthetic division in that generator, with polynomial coefficients in the others.  Returns
    None when the division is not exact over the integers.
    """
    shift = FIELD * index
    degree_of = {(mono >> shift) & FIELD_MASK: coeff for mono, coeff in divisor.items()}
    d = max(degree_of)
    lead = degree_of[d]
    buckets: dict[int, dict] = {}
    for mono, coeff in numerator.items():
        e = (mono >> shift) & FIELD_MASK
        buckets.setdefault(e, {})[mono - (e << shift)] = coeff
    quotient: dict = {}
    for e in range(max(buckets), d - 1, -1):
        bucket = buckets.get(e)
        if not bucket:
            continue
        q_part = {}
        for rest, coeff in bucket.items():
            if coeff % lead:
                return None
            q_part[rest] = coeff // lead
        q_exp = e - d
        for mono_r, coeff_r in q_part.items():
            quotient[mono_r + (q_exp << shift)] = coeff_r
        for k, c_k in degree_of.items():
            target = buckets.setdefault(q_exp + k, {})
            for rest, coeff in q_part.items():
                value = target.get(rest, 0) - coeff * c_k
                if value:
                    target[rest] = value
                else:
                    target.pop(rest, None)
    if any(buckets.get(e) for e in range(d)):
        return None
    return quotient


# ---------------------------------------------------------------- the ring of fractions


class Frac:
    """``num / (den · Π factor_f^e)``: num a polynomial dict, den a positive int."""

    __slots__ = ("num", "den", "factors", "degree")

    def __init__(self, num: dict, den: int = 1, factors: tuple = (), degree: int = 0):
        self.num = num
        self.den = den
        self.factors = factors  # sorted tuple of (factor id, exponent > 0)
        self.degree = degree  # upper bound on any generator's exponent in num

    @property
    def is_zero(self) -> bool:
        return not self.num

    def __repr__(self) -> str:
        return f"Frac({len(self.num)} terms / {self.den}·{self.factors})"


class Ring:
    """Generators, interned denominator factors and arithmetic on :class:`Frac` values."""

    def __init__(self) -> None:
        self.generator_index: dict = {}
        self.generator_keys: list = []
        self.factor_polys: list[dict] = []
        self.factor_degree: list[int] = []
        self.factor_index: dict = {}
        self.zero = Frac({})
        self.one = Frac({0: 1})

    # --- construction
    def generator(self, key) -> Frac:
        index = self.generator_index.get(key)
        if index is None:
            index = len(self.generator_keys)
            self.generator_index[key] = index
            self.generator_keys.append(key)
        return Frac({1 << (FIELD * index): 1}, degree=1)

    def const(self, value) -> Frac:
        value = Fraction(value)
        if not value:
            return self.zero
        return Frac({0: value.numerator}, value.denominator)

    # --- arithmetic
    def add(self, a: Frac, b: Frac, sign: int = 1) -> Frac:
        if not b.num:
            return a
        if not a.num:
            return b if sign == 1 else self.neg(b)
        if a.den == b.den and a.factors == b.factors:
            return Frac(poly_add(a.num, b.num, sign), a.den, a.factors, max(a.degree, b.degree))
        den = a.den * b.den // gcd(a.den, b.den)
        exps_a, exps_b = dict(a.factors), dict(b.factors)
        common = {f: max(exps_a.get(f, 0), exps_b.get(f, 0)) for f in exps_a.keys() | exps_b.keys()}
        num_a, deg_a = self._lift(a.num, a.degree, den // a.den, exps_a, common)
        num_b, deg_b = self._lift(b.num, b.degree, den // b.den, exps_b, common)
        return Frac(poly_add(num_a, num_b, sign), den, tuple(sorted(common.items())), max(deg_a, deg_b))

    def _lift(self, num, degree, scale, exps, common):
        num = poly_scale(num, scale)
        for f, e in common.items():
            missing = e - exps.get(f, 0)
            if missing:
                degree += missing * self.factor_degree[f]
                self._check(degree)
                num = poly_mul(num, poly_pow(self.factor_polys[f], missing))
        return num, degree

    def sub(self, a: Frac, b: Frac) -> Frac:
        return self.add(a, b, -1)

    def neg(self, a: Frac) -> Frac:
        return Frac(poly_scale(a.num, -1), a.den, a.factors, a.degree)

    def mul(self, a: Frac, b: Frac) -> Frac:
        if not a.num or not b.num:
            return self.zero
        degree = a.degree + b.degree
        self._check(degree)
        num = poly_mul(a.num, b.num)
        den = a.den * b.den
        factors = a.factors
        if b.factors:
            merged = dict(a.factors)
            for f, e in b.factors:
                merged[f] = merged.get(f, 0) + e
            factors = tuple(sorted(merged.items()))
        if den != 1 and len(num) <= 4:  # keep constants and small values tidy
            g = gcd(den, poly_content(num))
            if g > 1:
                num, den = {m: c // g for m, c in num.items()}, den // g
        return Frac(num, den, factors, degree)

    def power(self, a: Frac, n: int) -> Frac:
        if n < 0:
            return self.power(self.inverse(a), -n)
        result = self.one
        base = a
        while n:
            if n & 1:
                result = self.mul(result, base)
            n >>= 1
            if n:
                base = self.mul(base, base)
        return result

    def inverse(self, a: Frac) -> Frac:
        return self.divide(self.one, a)

    def divide(self, a: Frac, b: Frac) -> Frac:
        """``a / b``; raises ZeroDivisionError only when ``b`` is the zero polynomial."""
        if not b.num:
            raise ZeroDivisionError("division by the zero polynomial")
        if not a.num:
            return self.zero
        # b's denominator moves to the numerator, cancelling a's factors where it can.
        exps = dict(a.factors)
        num, degree = a.num, a.degree
        for f, e in b.factors:
            have = exps.get(f, 0)
            if have >= e:
                if have == e:
                    del exps[f]
                else:
                    exps[f] = have - e
            else:
                if have:
                    del exps[f]
                degree += (e - have) * self.factor_degree[f]
                self._check(degree)
                num = poly_mul(num, poly_pow(self.factor_polys[f], e - have))
        num = poly_scale(num, b.den)
        den = a.den
        # b's numerator: a constant, an exact divisor, or a new interned factor.
        content = poly_content(b.num)
        divisor = b.num
        lead = divisor[max(divisor)]
        if lead < 0:
            content = -content
        if content != 1:
            divisor = {m: c // content for m, c in divisor.items()}
        if content < 0:
            num = poly_scale(num, -1)
        den *= abs(content)
        if list(divisor) != [0]:
            quotient = self._exact_quotient(num, divisor)
            if quotient is not None:
                num = quotient
            else:
                f = self._intern(divisor)
                exps[f] = exps.get(f, 0) + 1
        g = gcd(den, poly_content(num)) if den != 1 else 1
        if g > 1:
            num, den = {m: c // g for m, c in num.items()}, den // g
        return Frac(num, den, tuple(sorted(exps.items())), degree)

    def _exact_quotient(self, num: dict, divisor: dict) -> dict | None:
        gens = generators_of(divisor)
        if len(gens) != 1:
            return None
        return _divide_by_one_generator(num, divisor, gens.pop())

    def _intern(self, poly: dict) -> int:
        key = tuple(sorted(poly.items()))
        f = self.factor_index.get(key)
        if f is None:
            f = len(self.factor_polys)
            self.factor_index[key] = f
            self.factor_polys.append(poly)
            self.factor_degree.append(max(self._max_exponent(poly), 1))
        return f

    @staticmethod
    def _max_exponent(poly: dict) -> int:
        best = 0
        for mono in poly:
            while mono:
                best = max(best, mono & FIELD_MASK)
                mono >>= FIELD
        return best

    @staticmethod
    def _check(degree: int) -> None:
        if degree > MAX_EXPONENT:
            raise DegreeOverflow(f"an exponent may reach {degree} (> {MAX_EXPONENT})")

    # --- inspection
    def key(self, a: Frac):
        """A hashable canonical key: equal keys mean equal values (not conversely)."""
        return (tuple(sorted(a.num.items())), a.den, a.factors)

    def substitute(self, a: Frac, index: int, replacement: Frac) -> Frac:
        """``a`` with generator ``index`` replaced by ``replacement`` (numerator only)."""
        shift = FIELD * index
        buckets: dict[int, dict] = {}
        for mono, coeff in a.num.items():
            e = (mono >> shift) & FIELD_MASK
            buckets.setdefault(e, {})[mono - (e << shift)] = coeff
        if set(buckets) == {0}:
            return a
        result = self.zero
        for e, part in buckets.items():
            term = self.mul(Frac(part, 1, (), a.degree), self.power(replacement, e))
            result = self.add(result, term)
        return self.mul(result, Frac({0: 1}, a.den, a.factors, 0))

    def reduce_power(self, a: Frac, index: int, q: int, base: Frac) -> Frac:
        """``a`` with every power t^e (e ≥ q) of generator ``index`` = t rewritten as
        t^(e mod q)·base^(e div q), using t^q = base (numerator only).  The value is unchanged
        wherever t^q = base holds; a zero result therefore proves ``a`` = 0 there."""
        shift = FIELD * index
        if all(((mono >> shift) & FIELD_MASK) < q for mono in a.num):
            return a
        buckets: dict[int, dict] = {}
        for mono, coeff in a.num.items():
            e = (mono >> shift) & FIELD_MASK
            buckets.setdefault(e, {})[mono - ((e - e % q) << shift)] = coeff
        result = self.zero
        for e, part in buckets.items():
            term = Frac(part, 1, (), a.degree)
            if e >= q:
                term = self.mul(term, self.power(base, e // q))
            result = self.add(result, term)
        return self.mul(result, Frac({0: 1}, a.den, a.factors, 0))

    def generators_in(self, a: Frac) -> set:
        """Keys of the generators that occur in ``a`` (numerator and denominator)."""
        indices = generators_of(a.num)
        for f, _ in a.factors:
            indices |= generators_of(self.factor_polys[f])
        return {self.generator_keys[i] for i in indices}

    def evaluate(self, a: Frac, values: dict, field) -> object:
        """Value of ``a`` with generator index ``i`` ↦ ``values[i]`` in a numeric ``field``."""

        def poly_value(poly: dict):
            total = field.const(0)
            for mono, coeff in poly.items():
                term = field.const(coeff)
                index = 0
                while mono:
                    e = mono & FIELD_MASK
                    if e:
                        term = field.mul(term, field.power(values[index], e))
                    mono >>= FIELD
                    index += 1
                total = field.add(total, term)
            return total

        denominator = field.const(a.den)
        for f, e in a.factors:
            denominator = field.mul(denominator, field.power(poly_value(self.factor_polys[f]), e))
        return field.divide(poly_value(a.num), denominator)
