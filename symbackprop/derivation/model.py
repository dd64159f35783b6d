"""Models written as definitions: a ``[model]`` table — named sizes, declared tensors, the forward
pass as ordered definitions in the claim language, a scalar loss — and its symbolic instances.

    [model]
    sizes = { N = 4, D = 3 }
    loss  = "L"                                  # a defined scalar, or an expression
    [model.inputs]                               # data
    x     = "N x D"
    "h[0]" = "H"                                 # one member of a family
    "x[t]" = { shape = "D", for = "t in 1..T" }  # a family over an index
    mask  = { shape = "N x N", values = "binary" }
    tokens = { shape = "T", values = "index 1..V" }
    [model.parameters]
    gamma = "1 x D"
    eps   = { shape = "scalar", values = "positive" }
    [model.targets]
    y = "N x C"
    [model.forward]                              # evaluated in this order
    mu = "mean(x, axis=0)"
    "h[t]" = { expr = "tanh(W @ h[t-1] + U @ x[t] + b)", for = "t in 1..T" }
    "y[i]" = { expr = "sum(w[k] * x[i+k-1], k in 1..K)", shape = "N-K+1" }   # entry by entry

Every declared entry is a free symbol with a *domain* (``values``: real — the default —,
positive, unit, binary; ``index 1..V`` entries are integers, fixed per instance); every forward
value v is stored as v + ε_v (``model.Instance``), so a claim may take the gradient of the loss —
or of any defined scalar — with respect to any input, parameter or intermediate, and a parameter
used in several places (the same W at every time step) is one symbol whose gradient sums over its
uses.  ``upstream = { y = "dy" }`` declares dy, shaped like y, and takes the loss Σ y ⊙ dy: the
form of every layer-backward derivation ("given ∂L/∂y = dy").
"""

from __future__ import annotations

import ast
import itertools
import random
import re
from dataclasses import dataclass, field

import sympy
from sympy import Integer

from ..matrices import Explicit, Mat, shape_text
from ..model import DOMAINS, Instance
from .language import Binding, ClaimError, Definition, Env, Scope, parse, parse_definition, parse_range

MODEL_KEYS = ("sizes", "inputs", "parameters", "targets", "forward", "loss", "upstream")
DECLARATION_KEYS = ("shape", "values", "for")
FORWARD_KEYS = ("expr", "for", "shape")
ROLES = ("inputs", "parameters", "targets")
MAX_ENTRIES = 4000  # free symbols of one instance
MAX_SIZE = 64  # any named size
MAX_MEMBERS = 200  # members of one family


class ModelError(Exception):
    """A ``[model]`` that cannot be built; one line naming the part and the problem."""


@dataclass
class Declaration:
    """A declared tensor (or one member, or a family of members) and its domain."""

    name: str
    role: str  # inputs | parameters | targets
    shape: tuple  # two size expressions (ast), or () for a scalar
    values: str = "real"  # a model.DOMAINS key, or "index"
    index_range: tuple | None = None  # (low, high) expressions for values = "index a..b"
    member: ast.expr | None = None  # h[0]: the member's index expression
    family: tuple | None = None  # x[t] for t in 1..T: (variable, low, high)
    text: str = ""


@dataclass
class ForwardDefinition:
    definition: Definition
    shape: tuple | None = None  # entry-wise definitions: their declared shape (size expressions)


@dataclass
class ModelSpec:
    """A parsed ``[model]``: what the model *is*, for any choice of its sizes."""

    sizes: dict = field(default_factory=dict)  # name -> int (the document's instance)
    declarations: list = field(default_factory=list)
    forward: list = field(default_factory=list)
    loss: str = ""
    upstream: dict = field(default_factory=dict)  # output name -> its upstream-gradient input name

    def names(self) -> set:
        return {d.name for d in self.declarations} | {f.definition.name for f in self.forward}

    def recurrent_sizes(self) -> set:
        """Sizes that bound a family's range (T in t in 1..T): instances keep them ≥ 3."""
        found = set()
        for item in [d.family for d in self.declarations if d.family] + \
                [f.definition.range for f in self.forward if f.definition.range]:
            for bound in item[1:]:
                found |= {n.id for n in ast.walk(bound) if isinstance(n, ast.Name) and n.id in self.sizes}
        return found

    def index_inputs(self) -> list:
        return [d for d in self.declarations if d.values == "index"]


# ----------------------------------------------------------------------------------- parsing


def _shape(text, where: str) -> tuple:
    """``"N x D"``, ``"N×D"``, ``[N, D]``, ``"N"`` (a column), ``"scalar"`` → size expressions."""
    if isinstance(text, list):
        parts = [str(p) for p in text]
    elif isinstance(text, (str, int)) and not isinstance(text, bool):
        text = str(text).strip()
        if text in ("scalar", "1"):
            return ()
        parts = [p for p in re.split(r"\s*[x×,]\s*", text)]
    else:
        raise ModelError(f"{where}: a shape is written \"N x D\", \"N\" or \"scalar\", not {text!r}")
    if len(parts) == 1:
        parts.append("1")
    if len(parts) != 2 or not all(parts):
        raise ModelError(f"{where}: a shape has one or two sizes (\"N x D\", \"N\" or \"scalar\"), not {text!r}")
    try:
        return tuple(parse(p) for p in parts)
    except ClaimError as error:
        raise ModelError(f"{where}: shape {text!r}: {error}") from None


def _values(text, where: str) -> tuple[str, tuple | None]:
    if text is None:
        return "real", None
    if not isinstance(text, str):
        raise ModelError(f"{where}: values must be a string such as \"positive\"")
    if text in DOMAINS:
        return text, None
    match = re.fullmatch(r"\s*index\s+(.+?)\s*\.\.\s*(.+?)\s*", text)
    if match:
        try:
            return "index", (parse(match.group(1)), parse(match.group(2)))
        except ClaimError as error:
            raise ModelError(f"{where}: values {text!r}: {error}") from None
    raise ModelError(f"{where}: values must be one of {', '.join(DOMAINS)} or \"index 1..V\", not {text!r}")


def parse_model(table, where: str) -> ModelSpec:
    """A ``[model]`` table → :class:`ModelSpec`; raises ModelError (one line) on the first problem."""
    if not isinstance(table, dict):
        raise ModelError(f"{where}: [model] must be a table")
    unknown = [k for k in table if k not in MODEL_KEYS]
    if unknown:
        raise ModelError(f"{where}: unknown key {unknown[0]!r} (allowed: {', '.join(MODEL_KEYS)})")
    spec = ModelSpec()
    sizes = table.get("sizes", {})
    if not isinstance(sizes, dict):
        raise ModelError(f"{where}: sizes must be a table of name = integer")
    for name, value in sizes.items():
        if not name.isidentifier() or name.startswith("_"):
            raise ModelError(f"{where}: sizes: {name!r} is not a usable name")
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_SIZE:
            raise ModelError(f"{where}: sizes: {name} must be an integer from 1 to {MAX_SIZE}, not {value!r}")
        spec.sizes[name] = value
    for role in ROLES:
        entries = table.get(role, {})
        if not isinstance(entries, dict):
            raise ModelError(f"{where}: [model.{role}] must be a table of name = \"shape\"")
        for target, value in entries.items():
            spec.declarations.append(_declaration(target, value, role, f"{where}: [model.{role}] {target}"))
    upstream = table.get("upstream", {})
    if not isinstance(upstream, dict) or not all(isinstance(v, str) and v.isidentifier() for v in upstream.values()):
        raise ModelError(f"{where}: upstream must be a table like {{ y = \"dy\" }}")
    spec.upstream = dict(upstream)
    forward = table.get("forward", {})
    if not isinstance(forward, dict):
        raise ModelError(f"{where}: [model.forward] must be a table of \"name\" = \"formula\"")
    for target, value in forward.items():
        spec.forward.append(_forward(target, value, f"{where}: [model.forward] {target}"))
    loss = table.get("loss")
    if loss is None and not spec.upstream:
        raise ModelError(f"{where}: [model] needs loss = \"…\" (a defined scalar or an expression) or "
                         "upstream = {{ y = \"dy\" }}")
    if loss is not None and spec.upstream:
        raise ModelError(f"{where}: [model] takes either loss or upstream, not both")
    if loss is not None and not isinstance(loss, str):
        raise ModelError(f"{where}: loss must be a formula string")
    spec.loss = loss or ""
    _check_names(spec, where)
    return spec


def _declaration(target: str, value, role: str, where: str) -> Declaration:
    if isinstance(value, dict):
        unknown = [k for k in value if k not in DECLARATION_KEYS]
        if unknown:
            raise ModelError(f"{where}: unknown key {unknown[0]!r} (allowed: {', '.join(DECLARATION_KEYS)})")
        shape_text_, values, family = value.get("shape", "scalar"), value.get("values"), value.get("for")
    else:
        shape_text_, values, family = value, None, None
    try:
        node = parse(target)
    except ClaimError as error:
        raise ModelError(f"{where}: {error}") from None
    member = None
    if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name):
        member, node = node.slice, node.value
    if not isinstance(node, ast.Name):
        raise ModelError(f"{where}: declare a name like x, or a member like h[0] or x[t] (with for)")
    declaration = Declaration(node.id, role, _shape(shape_text_, where), text=target)
    declaration.values, declaration.index_range = _values(values, where)
    if family is not None:
        try:
            declaration.family = parse_range(family)
        except ClaimError as error:
            raise ModelError(f"{where}: {error}") from None
        if not (isinstance(member, ast.Name) and member.id == declaration.family[0]):
            raise ModelError(f"{where}: a family is declared as {node.id}[t] with for = \"t in 1..T\"")
    elif member is not None:
        declaration.member = member
    return declaration


def _forward(target: str, value, where: str) -> ForwardDefinition:
    shape = None
    range_text = None
    if isinstance(value, dict):
        unknown = [k for k in value if k not in FORWARD_KEYS]
        if unknown:
            raise ModelError(f"{where}: unknown key {unknown[0]!r} (allowed: {', '.join(FORWARD_KEYS)})")
        range_text, shape_value, value = value.get("for"), value.get("shape"), value.get("expr")
        if shape_value is not None:
            shape = _shape(shape_value, where)
    if not isinstance(value, str):
        raise ModelError(f"{where}: the definition must be a formula string")
    try:
        definition = parse_definition(target, value, range_text)
    except ClaimError as error:
        raise ModelError(f"{where}: {error}") from None
    if definition.range is not None and not (isinstance(definition.layer, ast.Name)
                                             and definition.layer.id == definition.variable):
        raise ModelError(f"{where}: a ranged definition is written {definition.name}[t] with for = \"t in …\"")
    if definition.indices and shape is None and definition.layer is None:
        raise ModelError(f"{where}: an entry-by-entry definition needs shape = \"…\" (the entries it defines)")
    if shape is not None and not definition.indices:
        # "y[i]" with a shape: i is an entry index, not a family index
        if definition.layer is not None and isinstance(definition.layer, ast.Name) and definition.range is None:
            definition.indices, definition.layer = (definition.layer.id,), None
        else:
            raise ModelError(f"{where}: shape is for entry-by-entry definitions such as \"y[i]\" or \"y[i, j]\"")
    return ForwardDefinition(definition, shape)


def _check_names(spec: ModelSpec, where: str) -> None:
    seen: dict = {}
    for d in spec.declarations:
        if d.name in spec.sizes:
            raise ModelError(f"{where}: {d.name} is both a size and a declared tensor")
        if d.member is None and d.family is None and d.name in seen:
            raise ModelError(f"{where}: {d.name} is declared twice")
        seen.setdefault(d.name, d.role)
    for f in spec.forward:
        name = f.definition.name
        layer = f.definition.layer
        if isinstance(layer, ast.Name) and f.definition.range is None and layer.id not in spec.sizes:
            raise ModelError(f"{where}: [model.forward] {name}[{layer.id}]: {layer.id} is not a "
                             f"size; an entry-by-entry definition needs shape = \"…\", a family for = "
                             f"\"{layer.id} in 1..T\"")
        if name in spec.sizes:
            raise ModelError(f"{where}: [model.forward] {name} is also a size")
        whole = [d for d in spec.declarations if d.name == name and d.member is None and d.family is None]
        if whole:
            raise ModelError(f"{where}: [model.forward] {name} is already declared in [model.{whole[0].role}]")
    for output, upstream in spec.upstream.items():
        if upstream in seen or upstream in spec.sizes:
            raise ModelError(f"{where}: upstream {upstream} is already a name of the model")


# ---------------------------------------------------------------------------------- instances


class ModelInstance(Instance):
    """A [model] at chosen sizes: tensors (matrices, or families of them) over fresh symbols."""

    def __init__(self, sizes: dict):
        super().__init__()
        self.sizes = dict(sizes)
        self.alg = Explicit("columns")
        self.spec = None  # no dense-network spec: activations are called by name
        self.values: dict = {}  # name -> Mat | {index: Mat}
        self.refs: dict = {}  # name -> Mat | {index: Mat} of differentiation variables
        self.index_values: dict = {}  # index inputs -> their chosen integers (for the report)

    def is_family(self, name: str) -> bool:
        return isinstance(self.values.get(name), dict)

    def family_range(self, name: str) -> tuple:
        members = self.values.get(name)
        if isinstance(members, dict) and members:
            return min(members), max(members)
        return (0, -1)

    def tensor(self, name: str, index=None):
        value = self.values.get(name)
        if value is None:
            raise ClaimError(f"{name} is not defined yet (forward definitions are evaluated in order)")
        if isinstance(value, dict):
            if index is None:
                low, high = self.family_range(name)
                raise ClaimError(f"{name} needs an index, as in {name}[{low}] (defined: {self._members(name)})")
            if index not in value:
                raise ClaimError(f"{name}[{index}] is not defined (defined: {self._members(name)})")
            return value[index]
        if index is not None:
            raise ClaimError(f"{name} is not indexed: {name}[{index}] selects nothing (use {name}[i, j] for an entry)")
        return value

    def reference(self, name: str, index=None):
        self.tensor(name, index)  # the same errors
        ref = self.refs[name]
        reference = ref[index] if isinstance(ref, dict) else ref
        if reference is None:
            raise ClaimError(f"cannot differentiate with respect to {name}: its values are integer indices")
        return reference

    def _members(self, name: str) -> str:
        return ", ".join(f"{name}[{k}]" for k in sorted(self.values[name]))

    def describe(self) -> str:
        sizes = ", ".join(f"{k}={v}" for k, v in self.sizes.items())
        chosen = "; ".join(f"{k} = {v}" for k, v in self.index_values.items())
        return sizes + (f"; {chosen}" if chosen else "")


def bindings_of(spec: ModelSpec) -> dict:
    """The model's names as bindings of the claim language (tensors and sizes)."""
    bindings = {name: Binding(name, "size") for name in spec.sizes}
    for name in spec.names() | set(spec.upstream.values()):
        bindings[name] = Binding(name, "tensor")
    if not spec.loss or spec.upstream:
        bindings.setdefault("loss", Binding("loss", "tensor"))
    elif not _is_name(spec.loss, spec):
        bindings.setdefault("loss", Binding("loss", "tensor"))
    return bindings


def _is_name(text: str, spec: ModelSpec) -> bool:
    return text.strip().isidentifier() and text.strip() in spec.names()


def build(spec: ModelSpec, sizes: dict, rng: random.Random | None = None, definitions: list = ()) -> ModelInstance:
    """The instance at ``sizes``; integer index inputs are drawn with ``rng`` (seeded: reproducible).
    Raises ClaimError / ModelError with a one-line message naming the part that fails."""
    rng = rng or random.Random(0)
    instance = ModelInstance(sizes)
    scope = Scope(bindings_of(spec), list(definitions), instance)

    def integer(node, env=Env()):
        return scope.integer(node, env)

    def dims(shape, what) -> tuple[int, int]:
        if not shape:
            return (1, 1)
        rows, cols = (integer(p) for p in shape)
        if rows < 1 or cols < 1:
            raise ModelError(f"{what} has shape {rows}×{cols} at {instance.describe()}: sizes must be positive")
        return rows, cols

    entries = 0
    for d in spec.declarations:
        members = [None]
        if d.family is not None:
            variable, low, high = d.family
            members = list(range(integer(low), integer(high) + 1))
            if len(members) > MAX_MEMBERS:
                raise ModelError(f"{d.text}: {len(members)} members (at most {MAX_MEMBERS})")
        elif d.member is not None:
            members = [integer(d.member)]
        for k in members:
            rows, cols = dims(d.shape, d.text)
            entries += rows * cols
            if entries > MAX_ENTRIES:
                raise ModelError(f"the model has more than {MAX_ENTRIES} free entries at {instance.describe()}: "
                                 "choose smaller sizes")
            stem = d.name if k is None else f"{d.name}[{k}]"
            if d.values == "index":
                low, high = (integer(b) for b in d.index_range)
                value = Mat.build(rows, cols, lambda i, j: Integer(rng.randint(low, high)))
                ref = None
                instance.index_values[stem] = [int(v) for v in value] if rows * cols > 1 else int(value[0, 0])
            else:
                value = instance.variable_matrix(stem, rows, cols, d.values)
                ref = value
            _store(instance, d.name, k, value if d.shape else value[0, 0], ref)
    for output, name in spec.upstream.items():
        pass  # declared once the output's shape is known, below
    for f, member, env in forward_order(spec, scope):
        _define(instance, scope, f, member, env)
    for output, name in spec.upstream.items():
        value = instance.values.get(output)
        if value is None or isinstance(value, dict):
            raise ModelError(f"upstream: {output} is not a defined (unindexed) quantity of the model")
        shape = value.shape if isinstance(value, Mat) else (1, 1)
        dy = instance.variable_matrix(name, *shape)
        _store(instance, name, None, dy if isinstance(value, Mat) else dy[0, 0], dy)
        instance.J = sympy.Add(*[v * g for v, g in zip(_as_mat(value), dy)])
    if not spec.upstream:
        if _is_name(spec.loss, spec):
            loss = instance.tensor(spec.loss.strip())
        else:
            loss = scope.value(parse(spec.loss), Env())
        if isinstance(loss, Mat):
            if loss.shape != (1, 1):
                raise ModelError(f"the loss must be a scalar, not a {shape_text(loss.shape)} matrix")
            loss = loss[0, 0]
        instance.J = loss
    if "loss" in scope.bindings and "loss" not in instance.values:
        _store(instance, "loss", None, instance.J, Mat([[instance.J]]))
    return instance


def _as_mat(value) -> Mat:
    return value if isinstance(value, Mat) else Mat([[value]])


def _store(instance: ModelInstance, name: str, index, value, ref) -> None:
    if index is None:
        if name in instance.values:
            raise ModelError(f"{name} is defined twice")
        instance.values[name], instance.refs[name] = value, ref
        return
    members = instance.values.setdefault(name, {})
    refs = instance.refs.setdefault(name, {})
    if not isinstance(members, dict):
        raise ModelError(f"{name} is both a whole tensor and a family")
    if index in members:
        raise ModelError(f"{name}[{index}] is defined twice")
    members[index], refs[index] = value, ref


def forward_order(spec: ModelSpec, scope: Scope):
    """(definition, member, env) in the order the forward pass evaluates them.  Consecutive
    definitions over the same range form one block, evaluated step by step — so that an LSTM's
    c[t] may use h[t − 1] and h[t] use c[t]."""
    blocks: list = []
    for f in spec.forward:
        d = f.definition
        key = None if d.range is None else (d.variable, ast.dump(d.range[1]), ast.dump(d.range[2]))
        if key is not None and blocks and blocks[-1][0] == key:
            blocks[-1][1].append(f)
        else:
            blocks.append((key, [f]))
    for key, block in blocks:
        first = block[0].definition
        where = f"[model.forward] {first.name}"
        try:
            if key is not None:
                _, low, high = first.range
                low, high = scope.integer(low, Env()), scope.integer(high, Env())
                if high - low + 1 > MAX_MEMBERS:
                    raise ModelError(f"{where}: {first.name}[{first.variable}] for {first.variable} in {low}..{high} "
                                     f"has {high - low + 1} members (at most {MAX_MEMBERS})")
                members = list(range(low, high + 1))
            elif first.layer is not None:
                members = [scope.integer(first.layer, Env())]
            else:
                members = [None]
        except ClaimError as error:
            raise ModelError(f"{where}: its range: {error}") from None
        for member in members:
            for f in block:
                env = Env({f.definition.variable: member}) if key is not None else Env()
                yield f, member, env


def _define(instance: ModelInstance, scope: Scope, f: ForwardDefinition, k, env: Env) -> None:
    d = f.definition
    where = f"[model.forward] {d.name}"
    try:
        if d.indices:
            rows, cols = (scope.integer(p, env) for p in f.shape) if f.shape else (None, None)
            if rows is None or rows < 1 or cols < 1:
                raise ModelError(f"{where}: the shape of its entries must be positive")
            letters = d.indices

            def entry(i, j):
                bound = {letters[0]: i + 1} if len(letters) == 1 else {letters[0]: i + 1, letters[1]: j + 1}
                value = scope.value(d.expr, env.bind(indices=bound))
                if isinstance(value, Mat):
                    if value.shape != (1, 1):
                        raise ClaimError(f"each entry must be a scalar, not a {shape_text(value.shape)} matrix")
                    value = value[0, 0]
                return value

            if len(letters) == 1 and cols != 1:
                raise ModelError(f"{where}: one entry index defines a column: shape \"{rows}\"")
            value = Mat.build(rows, cols, entry)
        else:
            value = scope.value(d.expr, env)
    except ClaimError as error:
        member = "" if k is None else f"[{k}]"
        raise ModelError(f"[model.forward] {d.name}{member}: {error}") from None
    stem = d.name if k is None else f"{d.name}[{k}]"
    perturbed, epsilon = instance.perturbed(stem, value)
    _store(instance, d.name, k, perturbed, epsilon)


# ---------------------------------------------------------------------------- chosen sizes


def distinct_sizes(spec: ModelSpec, avoid: tuple = ()) -> dict | None:
    """Sizes that cannot hide a slip: pairwise distinct (a missing transpose is a shape error or a
    wrong value), at least 2 (at least 3 for a size that bounds a recurrence), not the document's,
    every shape positive — the cheapest such choice.  None when the model has no sizes to vary."""
    names = list(spec.sizes)
    if not names:
        return None
    recurrent = spec.recurrent_sizes()
    pool = range(2, 8)
    best = None
    for values in itertools.permutations(pool, len(names)) if len(names) <= 6 else []:
        chosen = dict(zip(names, values))
        if chosen == spec.sizes or any(chosen[n] < 3 for n in recurrent):
            continue
        if chosen in avoid:
            continue
        try:
            instance_cost = _cost(spec, chosen)
        except (ClaimError, ModelError):
            continue
        if instance_cost is not None and (best is None or instance_cost < best[0]):
            best = (instance_cost, chosen)
    return best[1] if best else None


def _cost(spec: ModelSpec, sizes: dict) -> int | None:
    """Free entries of the instance at ``sizes`` (None if some shape is not positive)."""
    scope = Scope({name: Binding(name, "size") for name in sizes}, [], ModelInstance(sizes))
    total = 0
    for d in spec.declarations:
        count = 1
        if d.family is not None:
            count = scope.integer(d.family[2], Env()) - scope.integer(d.family[1], Env()) + 1
            if count < 1:
                return None
        rows, cols = (scope.integer(p, Env()) for p in d.shape) if d.shape else (1, 1)
        if rows < 1 or cols < 1:
            return None
        total += count * rows * cols
    for f in spec.forward:
        if f.shape:
            rows, cols = (scope.integer(p, Env()) for p in f.shape)
            if rows < 1 or cols < 1:
                return None
        if f.definition.range is not None:
            _, low, high = f.definition.range
            if scope.integer(high, Env()) < scope.integer(low, Env()):
                return None
    return total if total <= MAX_ENTRIES else None
