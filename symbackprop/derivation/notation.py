"""Answers in the document's notation: a counterexample's point and a likely slip named with the
file's [symbols] (V, c, h, r …) and the document's layer numbers, not the tool's W1, b1, x, y.

A point's entries are named by their *position* in the document's quantity (``V[2][1,3]``,
``c[1][2]``, ``x[2,1]`` — rows and columns as the claims index them, in the file's layout), so
that they can be pasted back into a claim.  Quantities the document has no name for keep the
tool's names.
"""

from __future__ import annotations

from ..diagnose import Notation
from ..network import Network

# specific mappings first: a slip's phrase takes the first name that fits
_FUNCTIONS = {"hidden_activation": ("hidden_function",), "output_activation": ("output_function",),
              "activation_function": ("hidden_function", "output_function")}


def _first(bindings: dict, quantity: str):
    return next((b for b in bindings.values() if b.quantity == quantity), None)


def slip_notation(bindings: dict) -> Notation:
    """The names a likely slip uses: the document's weight, pre-activation, activation and function."""
    names = []
    for quantity in ("weight", "preactivation", "activation"):
        binding = _first(bindings, quantity)
        if binding is not None:
            names.append((quantity, binding.name, binding.shift))
    for quantity, roles in _FUNCTIONS.items():
        binding = _first(bindings, quantity)
        if binding is not None:
            names += [(role, binding.name, 0) for role in roles]
    return Notation(tuple(names))


def _entry_name(stem: str, matrix, i: int, j: int) -> str:
    if matrix.cols == 1:
        return f"{stem}[{i + 1}]"
    if matrix.rows == 1:
        return f"{stem}[{j + 1}]"
    return f"{stem}[{i + 1},{j + 1}]"


def document_names(bindings: dict, net: Network) -> dict:
    """tool symbol name → the document's name for it, for every symbol the document can name.
    A model's symbols already carry the document's names (``gamma[1]``): nothing to rename."""
    if net.spec is None:
        return {}
    blocks = []
    for quantity, per_layer in (("weight", net.W), ("bias", net.b)):
        binding = _first(bindings, quantity)
        if binding is not None:
            blocks += [(f"{binding.name}[{k + binding.shift}]", matrix) for k, matrix in per_layer.items()]
    data = _first(bindings, "input")
    activation = _first(bindings, "activation")
    if data is not None:
        blocks.append((data.name, net.X))
    elif activation is not None:
        blocks.append((f"{activation.name}[{activation.shift}]", net.X))
    target = _first(bindings, "target") or _first(bindings, "onehot")
    if target is not None:
        blocks.append((target.name, net.Y))
    names = {}
    for stem, matrix in blocks:
        for i in range(matrix.rows):
            for j in range(matrix.cols):
                entry = matrix[i, j]
                if entry.is_Symbol:
                    names[str(entry)] = _entry_name(stem, matrix, i, j)
    return names


def function_names(bindings: dict, net: Network) -> dict:
    """a generic function's name in the tool (g, f) → the document's name for it."""
    spec, names = net.spec, {}
    if spec is None:
        return names
    layers = {"hidden_activation": range(1, spec.depth), "output_activation": (spec.depth,),
              "activation_function": range(1, spec.depth + 1)}
    for quantity, chosen in layers.items():
        binding = _first(bindings, quantity)
        if binding is not None:
            for k in chosen:
                names.setdefault(spec.activation(k).name, binding.name)
    return names


def in_document(counterexample: dict, bindings: dict, net: Network) -> None:
    """Add ``document_point`` (and ``document_functions``) to a counterexample: the same point in
    the document's names, in the document's order of quantities."""
    names = document_names(bindings, net)
    point = counterexample.get("point", {})
    renamed = {names.get(name, name): value for name, value in point.items()}
    counterexample["document_point"] = dict(sorted(renamed.items(), key=lambda item: _order(item[0], names)))
    functions = counterexample.get("functions")
    if functions:
        renames = function_names(bindings, net)
        counterexample["document_functions"] = {renames.get(name, name): text for name, text in functions.items()}


def _order(name: str, names: dict) -> tuple:
    """Keep the tool's order (weights, biases, data, targets) but put unnamed symbols last."""
    return (name not in names.values(),)
