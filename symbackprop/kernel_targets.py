"""Proven formulas → PyTorch and JAX modules: the recorded programs of :mod:`kernel_programs`,
printed as tensor code.

The programs are the NumPy kernel's (``kernel_programs.programs``: the forward pass, the SGD step) plus
one more, :func:`vjp_program`: the loss with c = 1/m and, in the same program, the gradients with
a factor g folded into the reduction factor (c·g) and into the penalty (g·λ) — exactly the fold
that ``kernels.kernel_proofs`` proves gives g·∂J/∂θ for every real g.  With g the incoming
gradient of a reverse-mode pass this is the vector–Jacobian product of J, so it is the backward
of a ``torch.autograd.Function`` and the bwd of a ``jax.custom_vjp``.  The program is split where
the loss ends: what J needs is the forward (its buffers that the rest reads are saved), the rest
is the backward.

Pass 1 is the NumPy target's (:class:`kernel_programs.Schedule`: dependency order, stable forms, one
buffer per activation atom); pass 2 here (:class:`Dataflow`) is functional — one assignment per
buffer, no preallocated arrays, so the code runs unchanged on any device and dtype the engine
supports.  One printer per target (:class:`TorchPrinter`, :class:`JaxPrinter`, both SymPy
printers with one ``_print_`` method per node or statement) prints the statements; the module
around them is a template per target.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy
from sympy import Mul, Symbol
from sympy.printing.precedence import PRECEDENCE
from sympy.printing.str import StrPrinter

from . import kernel_checks, rules
from .derive import backprop
from .kernel_programs import (PENALTY, RATE, SCALE, Buffer, ExampleSum, Input, KernelError, Map, Product,
                              Program, Schedule, Softmax, SoftmaxPart, Total, _name_gradients, _numeric_form,
                              _symbolic_network, fresh_name, module_docstring, programs)
from .network import NetworkSpec, objective

TARGETS = ("numpy", "torch", "jax")


def vjp_program(spec: NetworkSpec) -> Program:
    """J (c = 1/m) and g·∂J/∂θ (c·g folded into δ_L, g·λ into the penalty) in one program."""
    L = spec.depth
    net = _symbolic_network(spec, penalty=RATE * PENALTY if spec.l2 else None)
    loss = objective(spec, net.alg, net.A[L], net.Y, net.W, SCALE, PENALTY if spec.l2 else None)
    net.reduction_factor = RATE * SCALE
    outputs = _name_gradients(net.alg, backprop(net), L)
    return Program("vjp", net.alg, {"loss": loss, **outputs}, spec)


# --------------------------------------------------------------------------- statements


@dataclass(frozen=True)
class MatMul:
    out: Buffer
    left: Buffer
    left_t: bool
    right: Buffer
    right_t: bool


@dataclass(frozen=True)
class Affine:
    """``left·right + bias`` in one call (the product is read nowhere else)."""

    out: Buffer
    product: MatMul
    bias: Symbol


@dataclass(frozen=True)
class ExampleTotal:
    """Σ over the examples of a matrix (a product with ones): a 1-D vector, a bias gradient."""

    out: Buffer
    arg: Buffer
    axis: int


@dataclass(frozen=True)
class Elementwise:
    out: Buffer
    expr: sympy.Expr


@dataclass(frozen=True)
class UnitSum:
    """Each example's sum over its units (kept as a row or a column)."""

    out: Buffer
    expr: sympy.Expr
    axis: int


@dataclass(frozen=True)
class EntrySum:
    out: Buffer
    expr: sympy.Expr


@dataclass(frozen=True)
class SoftmaxOf:
    """softmax with the example's maximum subtracted: shift, exp, total, quotient — or, when
    nothing else reads the shift and the total, the engine's softmax (which subtracts the maximum)."""

    out: Buffer
    z: Buffer
    axis: int
    shift: Buffer
    total: Buffer
    whole: bool = False


class LogSoftmax(sympy.Function):
    """z − c − log Σ exp(z − c) along an axis (the proved log form) as one engine call."""

    nargs = 2


def _numeric(expr):
    """Every activation atom replaced by what the code computes (its rule row's stable form)."""
    expr = sympy.sympify(expr)
    while expr.has(rules.Atom):
        expr = expr.replace(lambda e: isinstance(e, rules.Atom), _numeric_form)
    return _engine_sigmoid(expr)


class Sigmoid(sympy.Function):
    """σ(x) as the engine's own call, printed where the code would compute (1 + tanh(x/2))/2."""

    nargs = 1


def _engine_sigmoid(expr):
    """Each tanh(x/2) that σ's stable form brought in, written through σ: tanh(x/2) = 2σ(x) − 1,
    so (1 + tanh(x/2))/2 collapses to σ(x) — one engine call instead of four (the stable-form
    lemma proves the two sides equal; the engine's sigmoid does not overflow either)."""
    halves = {t for t in expr.atoms(sympy.tanh) if t.args[0].as_coeff_Mul()[0] == sympy.Rational(1, 2)}
    for t in halves:
        rewritten = expr.xreplace({t: 2 * Sigmoid(2 * t.args[0]) - 1})
        if sympy.count_ops(rewritten) <= sympy.count_ops(expr):
            expr = rewritten
    return expr


def _free_buffers(alg, expr) -> set:
    return {alg.buffers[s] for s in sympy.sympify(expr).free_symbols if s in alg.buffers}


class Dataflow(Schedule):
    """Pass 2 of the tensor targets: one assignment per buffer, in dependency order."""

    def __init__(self, program: Program):
        super().__init__(program)
        alg = self.alg
        self.reads: dict = {}  # buffer -> the buffers its statement reads
        for buffer in self.order:
            op = buffer.op
            if buffer in self.rewritten:
                self.reads[buffer] = _free_buffers(alg, self.rewritten[buffer])
            elif isinstance(op, Product):
                self.reads[buffer] = {op.left, op.right}
            elif isinstance(op, Softmax):
                self.reads[buffer] = {op.z}
        uses: dict = {}
        for read in self.reads.values():
            for b in read:
                uses[b] = uses.get(b, 0) + 1
        for symbol in program.outputs.values():
            for b in _free_buffers(alg, symbol):
                uses[b] = uses.get(b, 0) + 2
        self.statements: list = []
        fused = set()
        for buffer in self.order:
            op = buffer.op
            if isinstance(op, (Input, SoftmaxPart)) or op is None:
                continue
            if isinstance(op, Product):
                statement = self._product(buffer, op)
            elif isinstance(op, Softmax):
                statement = SoftmaxOf(buffer, op.z, op.axis, op.shift, op.total)
            elif isinstance(op, Map):
                statement = self._affine(buffer, uses) or Elementwise(buffer, _numeric(self.rewritten[buffer]))
                if isinstance(statement, Affine):
                    fused.add(statement.product.out)
            elif isinstance(op, ExampleSum):
                statement = UnitSum(buffer, _numeric(self.rewritten[buffer]), op.axis)
            elif isinstance(op, Total):
                statement = EntrySum(buffer, _numeric(self.rewritten[buffer]))
            else:
                raise KernelError(f"no tensor form for {type(op).__name__}")
            self.statements.append(statement)
        self.statements = [s for s in self.statements if s.out not in fused]
        for statement in self.statements:
            if isinstance(statement, Affine):
                self.reads[statement.out] = {statement.product.left, statement.product.right,
                                             alg.buffers[statement.bias]}
        self._inline(uses)
        self._log_softmax()
        for buffer, read in self.reads.items():
            if any(isinstance(b.op, Input) and b.op.name == "ones" for b in read) and not (
                    isinstance(buffer.op, Product)):
                raise KernelError("a matrix of ones outside a sum over the examples has no tensor form")

    def _inline(self, uses):
        """An elementwise quantity read once, by another elementwise expression or a sum, is
        written into that expression: no tensor of its own (and H(x)·y becomes one select)."""
        users: dict = {}
        for s in self.statements:
            for b in self.reads.get(s.out, ()):
                users.setdefault(b, []).append(s)
        expression_kinds = (Elementwise, UnitSum, EntrySum)
        inline = {}
        for s in self.statements:
            readers = users.get(s.out, [])
            if (isinstance(s, Elementwise) and s.out not in self.keep and uses.get(s.out, 0) == 1
                    and len(readers) == 1 and isinstance(readers[0], expression_kinds)
                    and readers[0].expr.count(s.out.symbol) == 1):
                inline[s.out.symbol] = s
        substituted = {}
        statements = []
        for s in self.statements:
            if isinstance(s, expression_kinds):
                expr = s.expr.xreplace(substituted) if substituted else s.expr
                s = type(s)(**{**s.__dict__, "expr": expr})
                self.reads[s.out] = _free_buffers(self.alg, expr)
            if s.out.symbol in inline:
                substituted[s.out.symbol] = s.expr
                continue
            statements.append(s)
        self.statements = statements

    def _log_softmax(self):
        """The log form z − c − log(total) written as one log_softmax call; a softmax whose shift
        and total nothing else reads is then one softmax call (few calls: Python's cost per call
        is what a small network's step is made of)."""
        expression_kinds = (Elementwise, UnitSum, EntrySum)
        for softmax in [s for s in self.statements if isinstance(s, SoftmaxOf)]:
            form = softmax.z.symbol - softmax.shift.symbol - sympy.log(softmax.total.symbol)
            call = LogSoftmax(softmax.z.symbol, softmax.axis)
            replacements = {form: call, -form: -call}
            statements = []
            for s in self.statements:
                if isinstance(s, expression_kinds):
                    expr = s.expr.xreplace(replacements)
                    if expr != s.expr:
                        s = type(s)(**{**s.__dict__, "expr": expr})
                        self.reads[s.out] = _free_buffers(self.alg, expr)
                statements.append(s)
            self.statements = statements
            parts = {softmax.shift, softmax.total}
            if not any(parts & self.reads.get(s.out, set()) for s in self.statements if s is not softmax) and not (
                    parts & self.keep):
                index = self.statements.index(softmax)
                self.statements[index] = SoftmaxOf(**{**softmax.__dict__, "whole": True})

    def _product(self, buffer, op: Product):
        if isinstance(op.right.op, Input) and op.right.op.name == "ones":
            return ExampleTotal(buffer, op.left, 0 if op.left_t else 1)  # δᵀ1 (rows) or δ1 (columns)
        return MatMul(buffer, op.left, op.left_t, op.right, op.right_t)

    def _affine(self, buffer, uses):
        expr = self.rewritten[buffer]
        if not isinstance(expr, sympy.Add) or len(expr.args) != 2:
            return None
        parts = [self.alg.buffers.get(a) for a in expr.args]
        if any(p is None for p in parts):
            return None
        products = [p for p in parts if isinstance(p.op, Product) and uses.get(p, 0) == 1]
        biases = [p for p in parts if isinstance(p.op, Input) and p.op.name.startswith("b")]
        if len(products) != 1 or len(biases) != 1 or buffer in self.keep:
            return None
        product = self._product(products[0], products[0].op)
        if not isinstance(product, MatMul):
            return None
        return Affine(buffer, product, biases[0].symbol)

    def written(self, statements) -> set:
        result = set()
        for s in statements:
            result.add(s.out)
            if isinstance(s, SoftmaxOf):
                result |= {s.shift, s.total}
        return result

    def needs(self, targets) -> list:
        """The statements that computing ``targets`` (buffers) takes, in order."""
        wanted = set(targets)
        producer = {}
        for s in self.statements:
            producer[s.out] = s
            if isinstance(s, SoftmaxOf):
                producer[s.shift] = producer[s.total] = s
        chosen = set()
        stack = list(wanted)
        while stack:
            b = stack.pop()
            s = producer.get(b)
            if s is None or id(s) in chosen:
                continue
            chosen.add(id(s))
            stack += list(self.reads.get(s.out, ()))
        return [s for s in self.statements if id(s) in chosen]

    def read_by(self, statements) -> set:
        result = set()
        for s in statements:
            result |= self.reads.get(s.out, set())
        return result


# ----------------------------------------------------------------------------- printers


class TensorPrinter(StrPrinter):
    """Statements and elementwise expressions as tensor code; subclasses name the library."""

    printmethod = "_tensorcode"  # not StrPrinter's _sympystr: an atom prints its numeric form here
    lib = ""
    keepdim = ""

    def __init__(self, names: dict):
        super().__init__()
        self.names = names

    # ---- statements
    def _print_MatMul(self, s):
        return f"{self._operand(s.left, s.left_t)} @ {self._operand(s.right, s.right_t)}"

    def _operand(self, buffer, transposed):
        return self.names[buffer] + (".T" if transposed else "")

    def _print_Affine(self, s):
        return f"{self._print(s.product)} + {self._print(s.bias)}"

    def _print_ExampleTotal(self, s):
        return f"{self.names[s.arg]}.sum({s.axis})"

    def _print_Elementwise(self, s):
        return self._print(s.expr)

    def _print_UnitSum(self, s):
        return f"({self._print(s.expr)}).sum({s.axis}, {self.keepdim}=True)"

    def _print_EntrySum(self, s):
        return f"({self._print(s.expr)}).sum()"

    def softmax_lines(self, s) -> list[str]:
        z, shift, total, out = (self.names[b] for b in (s.z, s.shift, s.total, s.out))
        return [f"{shift} = {self.maximum_along(z, s.axis)}",
                f"{out} = {self.lib}.exp({z} - {shift})",
                f"{total} = {out}.sum({s.axis}, {self.keepdim}=True)",
                f"{out} = {out} / {total}"]

    def lines(self, statement) -> list[str]:
        if isinstance(statement, SoftmaxOf) and statement.whole:
            return [f"{self.names[statement.out]} = {self.softmax_call(self.names[statement.z], statement.axis)}"]
        if isinstance(statement, SoftmaxOf):
            return self.softmax_lines(statement)
        return [f"{self.names[statement.out]} = {self._print(statement)}"]

    # ---- expressions
    def _print_Symbol(self, symbol):
        return self.names.get(symbol, symbol.name)

    def _print_Float(self, number):
        return repr(float(number))

    def _print_Rational(self, number):
        return repr(float(number)) if number.q != 1 else str(number.p)

    def _print_Half(self, number):
        return "0.5"

    def _print_Pow(self, expr, rational=False):
        base, exponent = expr.args
        if exponent == sympy.Rational(1, 2):
            return f"{self.lib}.sqrt({self._print(base)})"
        if exponent == -1:
            return f"1 / {self.parenthesize(base, 50)}"  # 50: above Mul, so a product is bracketed
        return super()._print_Pow(expr, rational)

    def _function(self, name, expr):
        return f"{self.lib}.{name}({', '.join(self._print(a) for a in expr.args)})"

    def _print_tanh(self, expr):
        return self._function("tanh", expr)

    def _print_exp(self, expr):
        return self._function("exp", expr)

    def _print_log(self, expr):
        return self._function("log", expr)

    def _print_Abs(self, expr):
        return self._function("abs", expr)

    def _print_Function(self, expr):
        # SymPy dispatches a subclass of Function by its own name only: an activation atom
        # (class sigmoid(Atom)) arrives here and prints its numeric form
        if isinstance(expr, rules.Atom):
            return f"({self._print(_numeric(expr))})"
        raise KernelError(f"no tensor form for {type(expr).__name__} ({expr})")

    def _print_Max(self, expr):
        return self._extremum("maximum", expr.args)

    def _print_Min(self, expr):
        return self._extremum("minimum", expr.args)

    def _extremum(self, function, args):
        text = self._print(args[0])
        for arg in args[1:]:
            text = f"{self.lib}.{function}({text}, {self._print(arg)})"
        return text

    def step_product(self, step, rest):
        """H(x)·y as a select: one pass, no 0/1 matrix (H(0) = 0: x > 0; H(0) = 1: x ≥ 0)."""
        return f"{self.lib}.where({self._step_test(step)}, {self._print(rest)}, 0.0)"

    def _step_test(self, expr):
        at_zero = expr.args[1] if len(expr.args) > 1 else sympy.Rational(1, 2)
        comparison = {0: ">", 1: ">="}.get(at_zero)
        return None if comparison is None else f"{self.parenthesize(expr.args[0], 40)} {comparison} 0"

    def _print_Mul(self, expr):
        factors = Mul.make_args(expr)
        steps = [f for f in factors if isinstance(f, sympy.Heaviside) and self._step_test(f) is not None]
        rest = Mul(*[f for f in factors if f not in steps[:1]])
        if steps and any(s in self.names for s in rest.free_symbols):
            return self.step_product(steps[0], rest)
        scalars = [f for f in factors if not any(s in self.names for s in f.free_symbols)]
        tensors = [f for f in factors if f not in scalars]
        if tensors and any(f.free_symbols for f in scalars):  # c·lr·A: the scalars first, one pass over A
            return f"{self._print(Mul(*scalars))}*{self.parenthesize(Mul(*tensors), PRECEDENCE['Mul'])}"
        return super()._print_Mul(expr)


class TorchPrinter(TensorPrinter):
    lib = "torch"
    keepdim = "keepdim"

    def _print_Affine(self, s):
        p = s.product
        return (f"torch.addmm({self._print(s.bias)}, {self._operand(p.left, p.left_t)}, "
                f"{self._operand(p.right, p.right_t)})")

    def maximum_along(self, z, axis):
        return f"torch.amax({z}, {axis}, keepdim=True)"

    def softmax_call(self, z, axis):
        return f"torch.softmax({z}, {axis})"

    def _print_LogSoftmax(self, expr):
        return f"torch.log_softmax({self._print(expr.args[0])}, {expr.args[1]})"

    def _print_Sigmoid(self, expr):
        return f"torch.sigmoid({self._print(expr.args[0])})"

    def _extremum(self, function, args):
        constants = [a for a in args if a.is_Number]
        tensors = [a for a in args if not a.is_Number]
        text = super()._extremum(function, tensors)
        for c in constants:  # torch.maximum takes two tensors; a bound is clamp_min / clamp_max
            text = f"torch.clamp_{'min' if function == 'maximum' else 'max'}({text}, {self._print(c)})"
        return text

    def _print_Mul(self, expr):
        # y·(1 − a²) and y·a·(1 − a), a a computed tensor (tanh′ and σ′ from the activation's
        # output): PyTorch's own tanh / sigmoid backward kernels compute exactly these products in
        # one pass (three allocating operations otherwise)
        factors = list(Mul.make_args(expr))
        for a in sorted((s for s in expr.free_symbols if s in self.names), key=str):
            square = 1 - a ** 2
            if square in factors:
                rest = Mul(*[f for f in factors if f != square])
                if any(s in self.names for s in rest.free_symbols):
                    return f"torch.ops.aten.tanh_backward({self._print(rest)}, {self._print(a)})"
            if a in factors and 1 - a in factors:
                rest = list(factors)
                rest.remove(a)
                rest.remove(1 - a)
                rest = Mul(*rest)
                if any(s in self.names for s in rest.free_symbols):
                    return f"torch.ops.aten.sigmoid_backward({self._print(rest)}, {self._print(a)})"
        return super()._print_Mul(expr)

    def step_product(self, step, rest):
        # PyTorch's CPU kernels with a boolean operand are slow (torch.where(x > 0, y, 0.0): ~140 µs
        # on a 128×256 float32 matrix); threshold_backward, its ReLU backward, is y where x > 0,
        # else 0 (~6 µs) — exactly H(x)·y with H(0) = 0
        if self._step_test(step).endswith("> 0"):
            return f"torch.ops.aten.threshold_backward({self._print(rest)}, {self._print(step.args[0])}, 0)"
        return f"{self.parenthesize(rest, PRECEDENCE['Mul'])}*({self._step_test(step)})"

    def _print_Heaviside(self, expr):
        test = self._step_test(expr)
        x = self._print(expr.args[0])
        if test is not None and test.endswith("> 0"):
            return f"torch.sign(torch.clamp_min({x}, 0))"  # H(x), H(0) = 0, without a boolean tensor
        if test is not None:
            return f"({test}).to({x}.dtype)"
        return f"torch.heaviside({x}, torch.full((), {self._print(expr.args[1])}, dtype={x}.dtype, device={x}.device))"

    def _print_LogAddExp(self, expr):
        return f"_logaddexp({self._print(expr.args[0])}, {self._print(expr.args[1])})"


class JaxPrinter(TensorPrinter):
    lib = "jnp"
    keepdim = "keepdims"

    def maximum_along(self, z, axis):
        return f"jnp.max({z}, {axis}, keepdims=True)"

    def softmax_call(self, z, axis):
        return f"jax.nn.softmax({z}, axis={axis})"

    def _print_LogSoftmax(self, expr):
        return f"jax.nn.log_softmax({self._print(expr.args[0])}, axis={expr.args[1]})"

    def _print_Sigmoid(self, expr):
        return f"jax.nn.sigmoid({self._print(expr.args[0])})"

    def _print_Heaviside(self, expr):
        test = self._step_test(expr)
        x = self._print(expr.args[0])
        if test is not None:
            return f"({test}).astype({x}.dtype)"
        return f"jnp.heaviside({x}, {self._print(expr.args[1])})"

    def _print_LogAddExp(self, expr):
        return f"jnp.logaddexp({self._print(expr.args[0])}, {self._print(expr.args[1])})"


PRINTERS = {"torch": TorchPrinter, "jax": JaxPrinter}


# ------------------------------------------------------------------------------ functions


PARAMETER_ORDER = lambda L: [f"{q}{k}" for k in range(1, L + 1) for q in ("W", "b")]  # noqa: E731


class Names(dict):
    """Buffer → the variable holding it: inputs by their names, quantities by their roles."""

    def __init__(self, flow: Dataflow):
        super().__init__()
        columns = flow.program.spec.layout == "columns"
        used = {"X", "Y", "m", "c", "lr", "g", "l2", "saved", "params"}
        for buffer in flow.alg.buffers.values():
            if isinstance(buffer.op, Input):
                name = buffer.op.name
                self[buffer] = f"{name}c" if columns and name.startswith("b") else name
                used.add(self[buffer])
        for s in flow.statements:
            outs = [s.out] + ([s.shift, s.total] if isinstance(s, SoftmaxOf) else [])
            for buffer in outs:
                self[buffer] = fresh_name(buffer.role, used)
        for buffer in list(self):
            self[buffer.symbol] = self[buffer]


def _scalars(flow, statements, extra=()) -> set:
    symbols = set()
    for s in statements:
        for field in ("expr",):
            if hasattr(s, field):
                symbols |= sympy.sympify(getattr(s, field)).free_symbols
    for e in extra:
        symbols |= sympy.sympify(e).free_symbols
    return symbols


def _prelude(flow, statements, names, extra=(), scale="1.0") -> list[str]:
    """Local names a function's statements use: the batch size, c, bias columns."""
    spec = flow.program.spec
    lines = []
    scalars = _scalars(flow, statements, extra)
    if SCALE in scalars:
        lines.append(f"m = X.shape[{1 if spec.layout == 'columns' else 0}]")
        lines.append(f"c = {scale} / m" if spec.reduction == "mean" else f"c = {scale}")
    if spec.layout == "columns":
        read = flow.read_by(statements)
        for b in sorted((b for b in read if isinstance(b.op, Input) and b.op.name.startswith("b")),
                        key=lambda b: int(b.op.name[1:])):
            lines.append(f"{names[b]} = {b.op.name}[:, None]")
    return lines


def _body(printer, statements) -> list[str]:
    return [line for s in statements for line in printer.lines(s)]


def _gradient_returns(flow, names) -> list[str]:
    result = []
    for name in PARAMETER_ORDER(flow.program.spec.depth):
        buffer = flow.alg.buffers[flow.program.outputs[name]]
        text = names[buffer]
        producer = next((s for s in flow.statements if s.out is buffer), None)
        if name.startswith("b") and not isinstance(producer, ExampleTotal):
            text += ".reshape(-1)"
        result.append(text)
    return result


def _function(name, args, lines, doc="") -> str:
    out = [f"def {name}({', '.join(args)}):"]
    if doc:
        out.append(f'    """{doc}"""')
    out += ["    " + line for line in lines]
    return "\n".join(out)


def function_sources(spec: NetworkSpec, target: str, penalty) -> tuple[list[str], dict]:
    """The printed functions of a tensor module: _forward, _loss_forward, _loss_backward,
    _scaled_gradients; and the programs they came from."""
    built = programs(spec, penalty)
    L = spec.depth
    params = PARAMETER_ORDER(L)
    printer_class = PRINTERS[target]
    sources = []

    flow = Dataflow(built["forward"])
    names = Names(flow)
    printer = printer_class(names)
    output = names[flow.alg.buffers[built["forward"].outputs["output"]]]
    sources.append(_function("_forward", ["X"] + params, _prelude(flow, flow.statements, names)
                             + _body(printer, flow.statements) + [f"return {output}"],
                             "The output a_L of the network for the batch X."))

    program = vjp_program(spec)
    flow = Dataflow(program)
    names = Names(flow)
    printer = printer_class(names)
    loss = program.outputs["loss"]
    forward = flow.needs(_free_buffers(flow.alg, loss))
    backward = [s for s in flow.statements if s not in forward]
    computed = flow.written(forward)
    inputs = [b for b in flow.alg.buffers.values() if isinstance(b.op, Input) and b.op.name != "ones"]
    read = flow.read_by(backward)
    saved = [b for b in inputs if b in read] + [b for s in forward for b in flow.written([s])
                                                 if b in read and b in computed]
    saved_names = [names[b] if not isinstance(b.op, Input) else b.op.name for b in saved]
    saved_text = "(" + "".join(f"{n}, " for n in saved_names) + ")"
    sources.append(_function("_loss_forward", ["X", "Y"] + params,
                             _prelude(flow, forward, names, [loss]) + _body(printer, forward)
                             + [f"return {printer._print(loss)}, {saved_text}"],
                             "J, and the tensors the backward reads."))
    lines = [f"{', '.join(saved_names)}, = saved" if saved_names else "del saved"]
    if any(RATE in _scalars(flow, [s]) for s in backward):
        lines.append("lr = g")
    lines += _prelude(flow, backward, names) + _body(printer, backward)
    lines.append(f"return ({', '.join(_gradient_returns(flow, names))},)")
    sources.append(_function("_loss_backward", ["saved", "g"], lines,
                             "g·∂J/∂θ for θ = W1, b1, …: the proven recurrences with g folded into c (as lr is in a step)."))
    if "X" not in saved_names and any(line.startswith("m =") for line in lines):
        raise KernelError("the backward needs the batch size but not X")  # never: ∂J/∂W1 reads X

    flow = Dataflow(built["train_step"])
    names = Names(flow)
    printer = printer_class(names)
    sources.append(_function("_scaled_gradients", ["X", "Y"] + params + ["lr"],
                             _prelude(flow, flow.statements, names, scale="lr") + _body(printer, flow.statements)
                             + [f"return ({', '.join(_gradient_returns(flow, names))},)"],
                             "lr·∂J/∂θ for θ = W1, b1, … (c = lr/m: the step's rate folded into δ_L)."))
    return sources, {**built, "vjp": program}


# ------------------------------------------------------------------------------- modules


_COMMON = '''
PARAMETERS = ({parameters},)
NAMES = tuple(name for name, _ in PARAMETERS)


def _parameters(params):
    try:
        return [params[name] for name in NAMES]
    except KeyError as missing:
        raise ValueError(f"params has no {{missing}}: expected {{', '.join(NAMES)}}") from None
    except TypeError:
        raise ValueError(f"params must be a dict of {{', '.join(NAMES)}}, not {{type(params).__name__}}") from None


def _initial_values(seed):
    """N(0, v/fan_in) weights (v = 2 for ReLU-like layers, else 1) and zero biases, as NumPy arrays
    (the same numbers as the NumPy kernel's init_params(seed))."""
    rng = np.random.default_rng(seed)
    values = {{}}
    for k, (fan_in, fan_out, variance) in enumerate(zip(WIDTHS[:-1], WIDTHS[1:], INIT_VARIANCE), start=1):
        values[f"W{{k}}"] = rng.normal(0.0, (variance / fan_in) ** 0.5, size=(fan_out, fan_in))
        values[f"b{{k}}"] = np.zeros(fan_out)
    return values
'''

_TORCH = '''

def _logaddexp(a, b):
    """log(exp(a) + exp(b)) without overflow; torch.logaddexp takes two tensors."""
    if not isinstance(a, torch.Tensor):
        a = torch.full((), a, dtype=b.dtype, device=b.device)
    if not isinstance(b, torch.Tensor):
        b = torch.full((), b, dtype=a.dtype, device=a.device)
    return torch.logaddexp(a, b)


class ProvenLoss(torch.autograd.Function):
    """J(X, Y, W1, b1, …) whose backward is the proven one: g·∂J/∂θ for each parameter θ.

    X and Y get no gradient (the proven formulas are ∂J/∂W_k and ∂J/∂b_k): passing an X or Y that
    requires grad is an error rather than a silently missing gradient.
    """

    @staticmethod
    def forward(ctx, X, Y, *params):
        if ctx.needs_input_grad[0] or ctx.needs_input_grad[1]:
            raise ValueError("loss: X and Y must not require grad (the proven backward gives "
                             "∂J/∂W and ∂J/∂b only)")
        J, saved = _loss_forward(X, Y, *params)
        ctx.save_for_backward(*saved)
        return J

    @staticmethod
    def backward(ctx, g):
        return (None, None) + _loss_backward(ctx.saved_tensors, g)


def init_params(seed=0, dtype=DTYPE, device=None):
    """{'W1': …, 'b1': …, …} as tensors of ``dtype`` on ``device`` (requires_grad is off)."""
    return {name: torch.as_tensor(value, dtype=dtype, device=device)
            for name, value in _initial_values(seed).items()}


def forward(params, X):
    """The network's output a_L for the batch X (plain torch operations: autograd records them)."""
    _check_inputs("forward", X)
    return _forward(X, *_parameters(params))


def loss(params, X, Y):
    """J as a 0-d tensor; J.backward() runs the proven backward (ProvenLoss)."""
    _check_inputs("loss", X, Y)
    return ProvenLoss.apply(X, Y, *_parameters(params))


def loss_and_grads(params, X, Y):
    """(J, {'W1': ∂J/∂W1, 'b1': ∂J/∂b1, …}) from the proven formulas, outside autograd."""
    _check_inputs("loss_and_grads", X, Y)
    with torch.no_grad():
        J, saved = _loss_forward(X, Y, *_parameters(params))
        grads = _loss_backward(saved, 1.0)
    return J, dict(zip(NAMES, grads))


def train_step(params, X, Y, lr):
    """One SGD step in place: θ ← θ − lr·∂J/∂θ for every parameter (no autograd graph)."""
    tensors = _parameters(params)
    with torch.no_grad():
        for theta, step in zip(tensors, _scaled_gradients(X, Y, *tensors, lr)):
            theta.sub_(step)


class Model(torch.nn.Module):
    """The network as an nn.Module: parameters W1, b1, …; ``model(X)`` is a_L and
    ``model.loss(X, Y)`` is J with the proven backward."""

    def __init__(self, seed=0, dtype=DTYPE, device=None):
        super().__init__()
        for name, value in init_params(seed, dtype, device).items():
            self.register_parameter(name, torch.nn.Parameter(value))

    def params(self):
        return {name: getattr(self, name) for name in NAMES}

    def forward(self, X):
        return forward(self.params(), X)

    def loss(self, X, Y):
        return loss(self.params(), X, Y)
'''

_JAX = '''

@jax.custom_vjp
def loss(params, X, Y):
    """J for the batch; jax.grad of it runs the proven backward (composes with jit and vmap).

    The cotangents of X and Y are NaN: the proven formulas are ∂J/∂W_k and ∂J/∂b_k, and a NaN
    cannot pass for a gradient.
    """
    _check_inputs("loss", X, Y)
    return _loss_forward(X, Y, *_parameters(params))[0]


def _loss_fwd(params, X, Y):
    _check_inputs("loss", X, Y)
    J, saved = _loss_forward(X, Y, *_parameters(params))
    return J, (saved, X, Y)


def _loss_bwd(residuals, g):
    saved, X, Y = residuals
    grads = dict(zip(NAMES, _loss_backward(saved, g)))
    return grads, jnp.full_like(X, jnp.nan), jnp.full_like(Y, jnp.nan)


loss.defvjp(_loss_fwd, _loss_bwd)


def init_params(seed=0, dtype=DTYPE):
    """{'W1': …, 'b1': …, …} as JAX arrays (float64 needs jax.config.update("jax_enable_x64", True))."""
    return {name: jnp.asarray(value, dtype=dtype) for name, value in _initial_values(seed).items()}


def forward(params, X):
    """The network's output a_L for the batch X."""
    _check_inputs("forward", X)
    return _forward(X, *_parameters(params))


@jax.jit
def loss_and_grads(params, X, Y):
    """(J, {'W1': ∂J/∂W1, 'b1': ∂J/∂b1, …}) from the proven formulas (jitted)."""
    _check_inputs("loss_and_grads", X, Y)
    J, saved = _loss_forward(X, Y, *_parameters(params))
    return J, dict(zip(NAMES, _loss_backward(saved, 1.0)))


@jax.jit
def train_step(params, X, Y, lr):
    """One SGD step: the new parameters θ − lr·∂J/∂θ (jitted; params is not changed)."""
    tensors = _parameters(params)
    return {name: theta - step for name, theta, step in zip(NAMES, tensors, _scaled_gradients(X, Y, *tensors, lr))}
'''

API = {
    "torch": ["    init_params(seed=0, dtype=DTYPE, device=None) -> {'W1': tensor, 'b1': tensor, ...}",
              "    forward(params, X) -> a_L",
              "    loss(params, X, Y) -> J   # J.backward() runs the proven backward (ProvenLoss)",
              "    loss_and_grads(params, X, Y) -> (J, {'W1': dJ/dW1, 'b1': dJ/db1, ...})",
              "    train_step(params, X, Y, lr)  # in place: theta <- theta - lr * dJ/dtheta",
              "    Model(seed=0, dtype=DTYPE, device=None)  # nn.Module: model(X), model.loss(X, Y)",
              "",
              "Any device and floating dtype: the code is torch operations on the tensors it is given.",
              "Engine calls for proved forms: torch.sigmoid where the code would compute (1 + tanh(x/2))/2,",
              "torch.softmax / torch.log_softmax (the maximum subtracted) for the shifted softmax and its",
              "log form, torch.ops.aten.threshold_backward (y where x > 0, else 0) for H(x)·y."],
    "jax": ["    init_params(seed=0, dtype=DTYPE) -> {'W1': array, 'b1': array, ...}",
            "    forward(params, X) -> a_L",
            "    loss(params, X, Y) -> J   # jax.custom_vjp: jax.grad(loss) is the proven backward",
            "    loss_and_grads(params, X, Y) -> (J, {'W1': dJ/dW1, 'b1': dJ/db1, ...})  # jitted",
            "    train_step(params, X, Y, lr) -> new params  # jitted: theta - lr * dJ/dtheta",
            "",
            "loss composes with jax.jit, jax.vmap and jax.grad (the cotangents of X and Y are NaN).",
            "Engine calls for proved forms: jax.nn.sigmoid where the code would compute (1 + tanh(x/2))/2,",
            "jax.nn.softmax / jax.nn.log_softmax (the maximum subtracted) for the shifted softmax and",
            "its log form."],
}
ENGINE = {"torch": "PyTorch", "jax": "JAX"}


def generate(spec: NetworkSpec, target: str, dtype: str = "float64", *, penalty=None, proofs=None) -> str:
    """The source of a standalone module (importing the engine and NumPy) implementing the kernel."""
    if target not in PRINTERS:
        raise KernelError(f"target must be one of {', '.join(TARGETS)}, not {target!r}")
    functions, built = function_sources(spec, target, penalty)
    n = spec.widths
    parameters = ", ".join(f'("W{k}", ({n[k]}, {n[k - 1]})), ("b{k}", ({n[k]},))' for k in range(1, spec.depth + 1))
    docstring = module_docstring(spec, dtype, built, proofs, penalty, target=target, api=API[target],
                                 engine=ENGINE[target])
    imports = ["import numpy as np", "import torch"] if target == "torch" else [
        "import numpy as np", "import jax", "import jax.numpy as jnp"]
    dtype_text = f"torch.{dtype}" if target == "torch" else repr(dtype)
    lines = [f'"""{docstring}"""', "", *imports, "",
             f"DTYPE = {dtype_text}",
             f"WIDTHS = {tuple(n)!r}",
             f"LAYOUT = {spec.layout!r}",
             f"INIT_VARIANCE = {tuple(row.init_variance for row in spec.activations)!r}",
             f"l2 = {float(penalty or 0.0)!r}"]
    lines.append(_COMMON.format(parameters=parameters))
    lines.append(kernel_checks.TENSOR_SOURCE.replace("ARRAY", "a tensor" if target == "torch" else "an array"))
    for source in functions:
        lines += ["", "", source]
    lines.append(_TORCH if target == "torch" else _JAX)
    return "\n".join(lines).rstrip() + "\n"
