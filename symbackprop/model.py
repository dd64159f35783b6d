"""A symbolic model instance: what the prover needs of any model, a dense network being one.

An instance holds

* its **free symbols** — inputs, parameters, targets, free scalars (λ, ε, γ …) — each with a
  *domain* saying what values it may take and how a witness samples it (a refutation must be a
  point the document's claim is about: a mask is 0 or 1, an ε is positive);
* its **perturbation symbols** ε, evaluated at 0: every intermediate quantity v of the
  computation is built as v + ε_v, so the true gradient of the loss with respect to v — the total
  derivative through all of v's uses — is the ordinary partial ∂J/∂ε_v;
* named **tensors** (matrices of SymPy expressions, or families of them over an index such as a
  layer or a time step), and the scalar loss ``J``.

``network.Network`` builds one from a dense-network spec, ``derivation.model`` from a ``[model]``
written as definitions, ``layers`` from one row of the layer library.  The prover
(``prove.Decider``) sees only this interface.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from fractions import Fraction

import sympy
from sympy import Symbol

from .matrices import Mat


@dataclass(frozen=True)
class Domain:
    """What values a free symbol takes, and how witnesses sample it (exact rationals)."""

    name: str
    description: str

    def sample(self, rng: random.Random) -> Fraction:
        if self.name == "real":
            return Fraction(rng.randint(-5, 5), rng.choice((3, 4, 5)))
        if self.name == "positive":
            return Fraction(rng.randint(1, 8), 8)
        if self.name == "unit":  # [0, 1]: probabilities, soft targets
            return Fraction(rng.randint(0, 8), 8)
        if self.name == "binary":
            return Fraction(rng.randint(0, 1))
        raise ValueError(f"unknown domain {self.name!r}")


DOMAINS = {
    "real": Domain("real", "any real number"),
    "positive": Domain("positive", "a positive real number"),
    "unit": Domain("unit", "a number in [0, 1]"),
    "binary": Domain("binary", "0 or 1"),
}


class Instance:
    """A model's symbolic instance (see the module docstring); subclasses fill it in."""

    def __init__(self):
        self._variables: list[tuple[Symbol, Domain]] = []
        self.perturbation: list[Symbol] = []
        self.J = None
        self.loss_symbol = Symbol("J")

    # ---- symbols
    @property
    def variables(self) -> list[tuple[Symbol, Domain]]:
        """Every free symbol with its domain, in the order witnesses draw them."""
        return self._variables

    def variable(self, name: str, domain: str = "real") -> Symbol:
        symbol = Symbol(name)
        self._variables.append((symbol, DOMAINS[domain]))
        return symbol

    def variable_matrix(self, name: str, rows: int, cols: int, domain: str = "real") -> Mat:
        """A rows × cols matrix of fresh symbols ``name[i,j]`` (``name[i]`` for a vector; 1-based)."""
        def entry(i, j):
            if rows == 1 and cols == 1:
                return self.variable(name, domain)
            index = f"{i + 1}" if cols == 1 else f"{j + 1}" if rows == 1 else f"{i + 1},{j + 1}"
            return self.variable(f"{name}[{index}]", domain)

        return Mat.build(rows, cols, entry)

    def perturbed(self, name: str, value):
        """``value + ε`` with fresh perturbation symbols (a scalar or a matrix), and the ε's."""
        if isinstance(value, Mat):
            epsilons = Mat.build(value.rows, value.cols, lambda i, j: self._epsilon(f"ε{name}[{i + 1},{j + 1}]"))
            return Mat([[v + e for v, e in zip(rv, re)] for rv, re in zip(value.entries, epsilons.entries)]), epsilons
        epsilon = self._epsilon(f"ε{name}")
        return sympy.sympify(value) + epsilon, Mat([[epsilon]])

    def _epsilon(self, name: str) -> Symbol:
        symbol = Symbol(name)
        self.perturbation.append(symbol)
        return symbol

    # ---- witnesses
    def sample(self, rng: random.Random) -> dict:
        """A point: an exact value for every free symbol, drawn from its domain."""
        return {symbol: domain.sample(rng) for symbol, domain in self.variables}

    def witness_note(self) -> str | None:
        """A remark a counterexample should carry (e.g. how constrained targets were chosen)."""
        return None

    def describe(self) -> str:
        return type(self).__name__
