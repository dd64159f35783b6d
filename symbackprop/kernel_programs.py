"""The recorded programs every kernel target prints: the intermediate form between the proven
formulas and the code.

``network.forward``, ``network.objective`` and ``derive.backprop`` — the very functions the
prover checks — are run over :class:`ProgramAlgebra`, whose values are *symbolic matrices*:
SymPy scalar expressions over buffer symbols, one symbol per materialised matrix (an input, a
product, an activation, a reduction).  Elementwise work stays a SymPy expression until it must
exist as an array; products, transposes and reductions become nodes of a small straight-line
:class:`Program`.  :class:`Schedule` is pass 1 of every target (dependency order, stable forms,
one buffer per activation atom); the NumPy target (:mod:`kernels`) and the tensor targets
(:mod:`kernel_targets`) each add their own pass 2 and printer.  :func:`module_docstring` is the
docstring of formulas and proof status that every exported module carries.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

import sympy
from sympy import Integer, Symbol
from sympy.printing.str import StrPrinter

from . import rules
from .derive import backprop
from .matrices import ShapeError, shape_text
from .network import NetworkSpec, forward, objective

BATCH = Symbol("m")  # the batch size: buffers are allocated per m at run time
SCALE = Symbol("c")  # 1/m (gradients) or lr/m (train_step): the reduction factor
RATE = Symbol("lr")
PENALTY = Symbol("l2")
RUNTIME_SCALARS = (SCALE, RATE, PENALTY)


class KernelError(ValueError):
    """A spec the generator cannot turn into NumPy code; one line for the user."""


# ------------------------------------------------------------------------ the program nodes


@dataclass(eq=False)
class Buffer:
    """One materialised matrix of the program."""

    symbol: Symbol
    shape: tuple
    op: object
    role: str = ""  # a readable name (Z1, A1, D2, GW2, …) for quantities the formulas name
    storage: "Buffer | None" = None  # computed in place into this buffer's array
    vector: bool = False  # stored 1-D (bias gradients)


@dataclass(frozen=True)
class Input:
    name: str  # X, Y, W1, b1, ones


@dataclass(frozen=True)
class Transposed:
    buffer: Buffer


@dataclass(frozen=True)
class Product:
    left: Buffer
    left_t: bool
    right: Buffer
    right_t: bool


@dataclass(frozen=True)
class Map:
    expr: sympy.Expr  # elementwise over buffer symbols (broadcasting)


@dataclass(frozen=True)
class Softmax:
    z: Buffer
    axis: int
    shift: Buffer  # c = max_j z_j per example
    total: Buffer  # Σ_j exp(z_j − c) per example


@dataclass(frozen=True)
class SoftmaxPart:
    """The shift or the total of a softmax: computed by the softmax's own statements."""

    softmax: Symbol


@dataclass(frozen=True)
class ExampleSum:
    expr: sympy.Expr
    axis: int


@dataclass(frozen=True)
class Total:
    expr: sympy.Expr


def _broadcast(shapes, what="elementwise operation"):
    shapes = [s for s in shapes if s]
    if not shapes:
        return ()
    result = list(shapes[0])
    for shape in shapes[1:]:
        for i, d in enumerate(shape):
            if result[i] == 1:
                result[i] = d
            elif d != 1 and d != result[i]:
                raise ShapeError(f"{what} of a {shape_text(shapes[0])} and a {shape_text(shape)} matrix")
    return tuple(result)


class ProgramAlgebra:
    """The matrix algebra of ``matrices.Explicit`` over symbolic matrices: it records a program."""

    def __init__(self, layout: str = "columns"):
        self.layout = layout
        self.buffers: dict[Symbol, Buffer] = {}
        self.materialised: dict = {}  # expression -> Buffer (common sub-expressions)
        self._count = 0

    # ---- buffers
    def new(self, shape, op, role="") -> Buffer:
        symbol = Symbol(f"_t{self._count}")
        self._count += 1
        buffer = Buffer(symbol, tuple(shape), op, role)
        self.buffers[symbol] = buffer
        return buffer

    def buffers_in(self, expr) -> list[Buffer]:
        """The buffers ``expr`` reads, in the order they were created: a set of symbols iterates in
        an order that changes with PYTHONHASHSEED, and the printed code must not."""
        found = [self.buffers[s] for s in sympy.sympify(expr).free_symbols if s in self.buffers]
        return sorted(found, key=lambda b: int(b.symbol.name[2:]))

    def input(self, name: str, shape) -> Symbol:
        return self.new(shape, Input(name), name).symbol

    def shape(self, expr) -> tuple:
        if isinstance(expr, Transposed):
            return expr.buffer.shape[::-1]
        expr = sympy.sympify(expr)
        return _broadcast([self.buffers[s].shape for s in expr.free_symbols if s in self.buffers])

    def materialise(self, expr) -> Buffer:
        expr = sympy.sympify(expr)
        if isinstance(expr, rules.Atom) and expr.rule.unfold is not None and not expr.rule.vector:
            unfolded = expr.rule.unfold(expr)  # identity(z) is z: nothing to compute
            if unfolded in self.buffers:
                return self.buffers[unfolded]
        if expr in self.buffers:
            return self.buffers[expr]
        found = self.materialised.get(expr)
        if found is None:
            found = self.materialised[expr] = self.new(self.shape(expr), Map(expr))
        return found

    def _operand(self, value) -> tuple[Buffer, bool]:
        if isinstance(value, Transposed):
            return value.buffer, True
        return self.materialise(value), False

    @staticmethod
    def _elementwise(value):
        if isinstance(value, Transposed):
            raise ShapeError("a transposed matrix is only used in products here")
        return value

    # ---- linear algebra
    def matmul(self, a, b):
        (left, lt), (right, rt) = self._operand(a), self._operand(b)
        ls, rs = (left.shape[::-1] if lt else left.shape), (right.shape[::-1] if rt else right.shape)
        if ls[1] != rs[0]:
            raise ShapeError(f"product of a {shape_text(ls)} and a {shape_text(rs)} matrix")
        return self.new((ls[0], rs[1]), Product(left, lt, right, rt)).symbol

    def T(self, a):
        return Transposed(self.materialise(a))

    def add(self, a, b):
        self._check(a, b, "sum")
        return self._elementwise(a) + self._elementwise(b)

    def sub(self, a, b):
        self._check(a, b, "difference")
        return self._elementwise(a) - self._elementwise(b)

    def hadamard(self, a, b):
        self._check(a, b, "elementwise product")
        return self._elementwise(a) * self._elementwise(b)

    def divide(self, a, b):
        self._check(a, b, "elementwise quotient")
        return self._elementwise(a) / self._elementwise(b)

    def _check(self, a, b, what):
        sa, sb = self.shape(a), self.shape(b)
        if sa and sb and sa != sb and _broadcast([sa, sb], what) not in (sa, sb):
            raise ShapeError(f"{what} of a {shape_text(sa)} and a {shape_text(sb)} matrix")

    def scale(self, c, a):
        return sympy.sympify(c) * self._elementwise(a)

    def apply(self, fn, a):
        return fn(self._elementwise(a))

    def log(self, a):
        return sympy.log(self._elementwise(a))

    def full(self, value, like):
        return Integer(value)

    def ones(self, rows, cols=1):
        return self.input("ones", (rows, cols))

    def total(self, a):
        return self.new((), Total(sympy.sympify(a))).symbol

    # ---- layout-aware pieces
    def examples(self, a):
        shape = self.shape(a)
        return shape[1] if self.layout == "columns" else shape[0]

    def output_width(self, a):
        shape = self.shape(a)
        return shape[0] if self.layout == "columns" else shape[1]

    def _example_axis(self):
        return 0 if self.layout == "columns" else 1  # the axis of units within one example

    def example_sums(self, a):
        shape = list(self.shape(a))
        axis = self._example_axis()
        shape[axis] = 1
        return self.new(tuple(shape), ExampleSum(sympy.sympify(a), axis)).symbol

    def affine(self, W, A, b):
        product = self.matmul(W, A) if self.layout == "columns" else self.matmul(A, self.T(W))
        bias = self.buffers[b]
        width = self.shape(product)[self._example_axis()]
        if max(bias.shape) != width:
            raise ShapeError(f"bias of shape {shape_text(bias.shape)} for a layer of width {width}")
        return self.materialise(product + b).symbol

    def softmax(self, Z, atom=None):
        z = self.materialise(Z)
        shape = list(z.shape)
        axis = self._example_axis()
        shape[axis] = 1
        shift = self.new(tuple(shape), None, "shift")
        total = self.new(tuple(shape), None, "sumexp")
        softmax = self.new(z.shape, Softmax(z, axis, shift, total))
        shift.op = total.op = SoftmaxPart(softmax.symbol)
        return softmax.symbol


# -------------------------------------------------------------------- building the programs


def _numeric_form(atom):
    """What the kernel computes for an activation atom: the row's stable form, else its definition."""
    row = atom.rule
    args = atom.args[row.index_args:]
    if row.stable is not None and not row.vector:
        return row.stable(*args)
    if row.unfold is not None:
        return row.unfold(atom)
    if row.definition is None:
        raise KernelError(f"activation {row.name} has no numeric form: kernels need a concrete function")
    return row.definition(*args)


@dataclass
class Program:
    """One kernel function's straight-line program: its buffers and its outputs."""

    name: str
    alg: ProgramAlgebra
    outputs: dict  # output name -> buffer symbol (or a scalar expression, for the loss)
    spec: NetworkSpec


def _symbolic_network(spec: NetworkSpec, *, penalty=None):
    """The quantities ``derive.backprop`` reads, as symbolic matrices of a fresh program."""
    alg = ProgramAlgebra(spec.layout)
    n, L = spec.widths, spec.depth

    def data(name, width):
        return alg.input(name, (width, BATCH) if spec.layout == "columns" else (BATCH, width))

    W = {k: alg.input(f"W{k}", (n[k], n[k - 1])) for k in range(1, L + 1)}
    b = {k: alg.input(f"b{k}", (n[k], 1) if spec.layout == "columns" else (1, n[k])) for k in range(1, L + 1)}
    X, Y = data("X", n[0]), data("Y", n[L])
    Z, A = forward(spec, alg, W, b, X)
    for k in range(1, L + 1):
        alg.materialise(Z[k]).role = f"Z{k}"
        alg.materialise(A[k]).role = f"A{k}"
    return SimpleNamespace(alg=alg, spec=spec, depth=L, W=W, b=b, X=X, Y=Y, Z=Z, A=A, batch=BATCH,
                           reduction_factor=SCALE, penalty=penalty)


def _name_gradients(alg, gradients, L):
    outputs = {}
    for k in range(1, L + 1):
        delta = alg.materialise(gradients["z", k])
        delta.role = delta.role or f"D{k}"
        for quantity in ("W", "b"):
            buffer = alg.materialise(gradients[quantity, k])
            buffer.role = f"G{quantity}{k}"
            buffer.vector = quantity == "b"
            outputs[f"{quantity}{k}"] = buffer.symbol
    return outputs


def programs(spec: NetworkSpec, penalty: float | None = None) -> dict[str, Program]:
    """The four kernel functions as programs, each derived from the proven formulas."""
    if spec.l2 and penalty is None:
        raise KernelError("this network has an L2 penalty: give its λ (penalty=…, --l2-lambda)")
    if penalty is not None and not 0 <= float(penalty) < float("inf"):
        raise KernelError(f"the L2 penalty's λ must be a finite number ≥ 0, not {penalty!r}")
    L = spec.depth
    result = {}

    net = _symbolic_network(spec)
    output = net.alg.materialise(net.A[L])
    output.role = "output"
    result["forward"] = Program("forward", net.alg, {"output": output.symbol}, spec)

    net = _symbolic_network(spec)
    l2 = PENALTY if spec.l2 else None
    loss = objective(spec, net.alg, net.A[L], net.Y, net.W, SCALE, l2)
    result["loss"] = Program("loss", net.alg, {"loss": loss}, spec)

    net = _symbolic_network(spec, penalty=l2)
    loss = objective(spec, net.alg, net.A[L], net.Y, net.W, SCALE, l2)
    outputs = _name_gradients(net.alg, backprop(net), L)
    result["loss_and_grads"] = Program("loss_and_grads", net.alg, {"loss": loss, **outputs}, spec)

    # SGD with the rate folded into the reduction factor: every gradient is linear in δ_L, so
    # c = lr/m yields lr·∂J/∂θ directly (proved in kernel_proofs); the penalty term scales too.
    net = _symbolic_network(spec, penalty=RATE * PENALTY if spec.l2 else None)
    outputs = _name_gradients(net.alg, backprop(net), L)
    result["train_step"] = Program("train_step", net.alg, outputs, spec)
    return result


# ------------------------------------------------------------------------------- lowering


def fresh_name(role: str | None, used: set) -> str:
    """The array's name in printed code: its quantity's role (Z1, D2, …) when that is free, else
    t<n>; added to ``used``."""
    name = role if role and role.isidentifier() and role not in used else None
    if name is None:
        name = f"t{len(used)}"
        while name in used:
            name += "_"
    used.add(name)
    return name


@dataclass(frozen=True)
class Call:
    """``function(*args, out)``: a ufunc (or matmul) writing into a preallocated array."""

    function: str
    args: tuple
    out: Buffer


@dataclass(frozen=True)
class Reduce:
    """``ufunc.reduce(arg, axis, None, out, keepdims)``."""

    ufunc: str
    arg: object
    axis: int | None
    out: Buffer
    keepdims: bool = True


@dataclass(frozen=True)
class ScalarTotal:
    """A Python float: the sum of every entry of ``arg``."""

    target: Buffer
    arg: object


@dataclass(frozen=True)
class Constant:
    value: float


@dataclass(frozen=True)
class UnitOnes:
    """A constant matrix of ones (n×1 or 1×n): sums over an example's units as a product."""

    shape: tuple


class Schedule:
    """Pass 1, shared by every target: the buffers a :class:`Program`'s outputs need, in dependency
    order, each Map/sum rewritten to what the code computes (stable forms, one buffer per atom)."""

    def __init__(self, program: Program):
        self.program = program
        self.alg = alg = program.alg
        self.order: list[Buffer] = []  # buffers computed, in order
        self.done: set = set()
        self.rewritten: dict = {}
        self.keep = {alg.buffers[s] for s in program.outputs.values() if s in alg.buffers}
        for symbol in program.outputs.values():
            self._visit(sympy.sympify(symbol))

    # ---- pass 1: rewrite each needed buffer (stable forms, materialised atoms) in dependency order
    def _visit(self, expr):
        for buffer in self.alg.buffers_in(expr):
            self._visit_buffer(buffer)

    def _visit_buffer(self, buffer: Buffer):
        if buffer in self.done:
            return
        self.done.add(buffer)
        op = buffer.op
        if isinstance(op, Map):
            expr = self._prepare(op.expr)
            self.rewritten[buffer] = expr
            self._visit(expr)
        elif isinstance(op, (ExampleSum, Total)):
            expr = self._prepare(op.expr)
            self.rewritten[buffer] = expr
            self._visit(expr)
        elif isinstance(op, Product):
            self._visit_buffer(op.left)
            self._visit_buffer(op.right)
        elif isinstance(op, Softmax):
            self._visit_buffer(op.z)
            self.order += [part for part in (op.shift, op.total) if part not in self.done]
            self.done |= {op.shift, op.total}
        elif isinstance(op, SoftmaxPart):
            self._visit_buffer(self.alg.buffers[op.softmax])
        self.order.append(buffer)

    def _prepare(self, expr):
        """Stable logs, then every activation atom inside ``expr`` as a buffer of its own
        (a Map that *is* one atom computes that atom's numeric form)."""
        expr = self._stable_logs(expr)
        top_atom = expr if isinstance(expr, rules.Atom) else None

        def atoms_first(e):
            if isinstance(e, rules.Atom):
                inner = e.func(*[atoms_first(a) for a in e.args])
                if inner == top_atom:
                    return _numeric_form(inner)
                form = _numeric_form(inner)
                if isinstance(form, Symbol) or form.is_Number:
                    return form  # identity: nothing to compute
                return self.alg.materialise(inner).symbol
            if not e.args or isinstance(e, Symbol):
                return e
            return e.func(*[atoms_first(a) for a in e.args])

        return atoms_first(expr)

    def _stable_logs(self, expr):
        """log of an activation → the row's log form (proved equal in :func:`stable_form_lemmas`)."""

        def rewrite(node):
            argument = node.args[0]
            if isinstance(argument, rules.Atom) and argument.rule.log_form is not None and not argument.rule.vector:
                return argument.rule.log_form(*argument.args)
            one_minus = 1 - argument
            if isinstance(one_minus, rules.Atom) and one_minus.rule.log_complement_form is not None:
                return one_minus.rule.log_complement_form(*one_minus.args)
            buffer = self.alg.buffers.get(argument)
            if buffer is not None and isinstance(buffer.op, Softmax):
                op = buffer.op
                return op.z.symbol - op.shift.symbol - sympy.log(op.total.symbol)
            return node

        return expr.replace(lambda e: isinstance(e, sympy.log), rewrite)




class FormulaPrinter(StrPrinter):
    """The program's named quantities as formulas (Z1 = X·W1ᵀ + b1, D1 = (D2·W2)*step(Z1), …)."""

    def __init__(self, alg: ProgramAlgebra):
        super().__init__()
        self.alg = alg

    def _print_Symbol(self, symbol):
        buffer = self.alg.buffers.get(symbol)
        if buffer is None:
            return symbol.name
        if isinstance(buffer.op, Input) or buffer.role[:1] in ("Z", "A", "D", "G") and buffer.role.isidentifier():
            return self.definition(buffer) if isinstance(buffer.op, Input) else buffer.role
        return f"({self.definition(buffer)})"

    def definition(self, buffer: Buffer) -> str:
        op = buffer.op
        if isinstance(op, Input):
            return op.name
        if isinstance(op, Product):
            if isinstance(op.right.op, Input) and op.right.op.name == "ones":
                return f"Σ_examples {self._print(op.left.symbol)}"
            left = self._print(op.left.symbol) + ("ᵀ" if op.left_t else "")
            return f"{left}·{self._print(op.right.symbol)}" + ("ᵀ" if op.right_t else "")
        if isinstance(op, Map):
            return self._print(op.expr)
        if isinstance(op, Softmax):
            return f"softmax({self._print(op.z.symbol)}) per example"
        if isinstance(op, Total):
            return f"Σ_entries {self._print(op.expr)}"
        if isinstance(op, ExampleSum):
            return f"Σ_units {self._print(op.expr)}"
        return str(op)

    def formulas(self, outputs: dict) -> list[str]:
        """Forward quantities in layer order, then deltas and gradients from layer L down."""
        named = {b.role: b for b in self.alg.buffers.values()
                 if b.role[:1] in ("Z", "A", "D", "G") and not isinstance(b.op, Input)}
        L = max(int(role.lstrip("ZADGWb")) for role in named)
        order = [f"{q}{k}" for k in range(1, L + 1) for q in ("Z", "A")]
        order += [f"{q}{k}" for k in range(L, 0, -1) for q in ("D", "GW", "Gb")]
        return [f"{role} = {self.definition(named[role])}" for role in order if role in named]


def module_docstring(spec: NetworkSpec, dtype: str, built: dict, proofs, penalty, *, target: str = "numpy",
                     api: list | None = None, engine: str = "NumPy", blas: bool = False) -> str:
    n = spec.widths
    rows = spec.layout == "rows"
    x_shape, y_shape = ((f"(m, {n[0]})", f"(m, {n[-1]})") if rows else (f"({n[0]}, m)", f"({n[-1]}, m)"))
    reduction = "1/m" if spec.reduction == "mean" else "1"
    imports = "imports only NumPy" if target == "numpy" else f"imports {engine} and NumPy"
    if blas:
        imports = "imports NumPy, and SciPy's BLAS where it is installed"
    lines = [
        f"{engine} kernel for the network {spec.describe().rsplit(', batch', 1)[0]}, {dtype}.",
        "",
        "Generated by symbackprop from the formulas it proves (forward pass, loss, backprop",
        f"recurrences); {imports}.",
        "",
        f"Data: X is {x_shape}, Y is {y_shape} ({'one example per row' if rows else 'one example per column'}).",
    ]
    if target == "numpy":
        lines += [
            "Parameters: W_k is (n_k, n_{k-1}), b_k is (n_k,); init_params(seed) returns a Params dict whose",
            "arrays are views into one flat array " + ("(train_step's fastest form needs them: see below)." if blas
                                                        else "(train_step then updates all of them in one call)."),
            "",
            "    init_params(seed=0) -> Params",
            "    forward(params, X) -> a_L",
            "    loss(params, X, Y) -> J",
            "    loss_and_grads(params, X, Y) -> (J, {'W1': dJ/dW1, 'b1': dJ/db1, ...})",
            "    train_step(params, X, Y, lr)  # in place: theta <- theta - lr * dJ/dtheta",
            "",
            "Returned arrays are reused by the next call of the same function (copy them to keep them);",
            "the functions are not thread-safe.",
            "",
        ]
        if blas:
            lines += [
                "train_step runs one of two forms of the same products (the module's BLAS says which once",
                "it has run): with SciPy installed and params a Params, SciPy's BLAS (imported by the first",
                "call), each weight gradient's GEMM accumulating −lr·∂J/∂W_k straight into W_k (β = 1), each",
                "bias gradient's GEMV into b_k, each forward product added onto the broadcast bias: no",
                "gradient arrays and no update pass; else _train_step_numpy, NumPy only (matmul into",
                "gradient arrays, then one subtract).",
                "",
            ]
    else:
        lines += ["Parameters: W_k is (n_k, n_{k-1}), b_k is (n_k,); init_params(seed) gives the NumPy",
                  "kernel's initial values.", ""] + list(api or []) + [
            "",
            "The backward computes g·∂J/∂θ (g: the incoming gradient) by the same formulas with c·g in",
            "place of c and g·λ in place of λ: the fold that is proved below for train_step's lr.",
            "",
        ]
    if penalty is not None:
        lines += [f"L2 penalty: J += (λ/2)·Σ_k ‖W_k‖² with λ = l2 = {penalty!r}.", ""]
    lines.append(f"Formulas (c = {reduction}; train_step uses c = lr·{reduction}, which yields lr·∂J/∂θ):")
    program = built["loss_and_grads"]
    printer = FormulaPrinter(program.alg)
    lines += ["    " + line for line in printer.formulas(program.outputs)]
    lines.append(f"    J = {printer._print(program.outputs['loss'])}")
    lines += ["", "Numerically stable forms: each activation is computed from the stable form of its rule",
              "row (σ(x) = (1 + tanh(x/2))/2, softplus by logaddexp), softmax with the example's maximum",
              "subtracted, and the log of an output activation from its log form (log-sum-exp",
              "cross-entropy, binary cross-entropy from logits).", "", "Proof status:"]
    if proofs is None:
        lines.append("    not checked here (symbackprop export runs symbackprop.kernels.kernel_proofs)")
    else:
        lines += ["    " + line for line in proofs.lines()]
        lines.append(f"    overall: {'every statement proved' if proofs.all_proved else 'NOT all proved'} "
                     f"({proofs.seconds:.2f} s)")
    return "\n".join(lines).replace("\\", "\\\\").replace('"""', "'''")
