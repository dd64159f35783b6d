"""Proven formulas → fast NumPy kernels.

The kernel is not written by hand: it prints the recorded programs of :mod:`kernel_programs`
(the forward pass, the loss and the backprop recurrences that the prover checks, run over a
symbolic matrix algebra).  This module is the front door of every target: :func:`generate` and
:func:`build` print NumPy here and PyTorch / JAX through :mod:`kernel_targets`.

Lowering turns each node into NumPy calls that write into preallocated buffers (``out``
positionally, constants as 0-d arrays: both measurably cheaper than the allocating forms on small
nets), reusing a product's buffer in place when nothing else reads it.  Each activation atom is
computed from its rule row's ``stable`` form; ``log`` of an activation uses the row's
``log_form`` (BCE from logits, log-sum-exp cross-entropy).  Every such form differs from the
textbook one, so :func:`stable_form_lemmas` proves each equal to the row's definition before the
kernel's docstring calls it proved.  :class:`KernelPrinter` (a SymPy printer: one ``_print_``
method per statement type) prints the program; the same source is compiled in process
(:func:`build`) and written by ``symbackprop export``.

Layout: the kernel follows the spec — with examples as rows (the default of ``export`` and
``train``) X is (m, n_0) and Y is (m, n_L); with examples as columns they are transposed.
W_k is (n_k, n_{k−1}) and b_k is (n_k,) in both.
"""

from __future__ import annotations

import time
import types
from dataclasses import dataclass, replace
from types import SimpleNamespace

import sympy
from sympy import Add, Integer, Mul, Pow, Symbol
from sympy.printing.numpy import NumPyPrinter

from . import budget, kernel_checks, kernel_targets, rules
from .derive import backprop
from .kernel_programs import (RATE, RUNTIME_SCALARS, SCALE, Buffer, Call, Constant, ExampleSum, Input, KernelError,
                              Map, Product, Program, Reduce, ScalarTotal, Schedule, Softmax, SoftmaxPart, Total,
                              Transposed, UnitOnes, _numeric_form, fresh_name, module_docstring, programs)
from .network import Network, NetworkSpec
from .prove import PROVED, UNDECIDED, Decider, LemmaResult, Verdict, elementary, lemmas_for

@dataclass(frozen=True)
class Gemm:
    """BLAS ``out ← α·op(left)·op(right) + β·out`` (SciPy's ?gemm): out is a C-ordered array, so the
    call computes its Fortran-ordered transpose, outᵀ = α·op(right)ᵀ·op(left)ᵀ + β·outᵀ, and every
    operand is passed as the ``.T`` view of its C-ordered array with the transpose as a flag: no copy."""

    alpha: float
    left: Buffer
    left_t: bool
    right: Buffer
    right_t: bool
    beta: float
    out: Buffer


@dataclass(frozen=True)
class Gemv:
    """BLAS ``out ← α·op(matrix)·ones + β·out`` (?gemv), out a 1-D array: a sum over the examples
    accumulated into a bias."""

    alpha: float
    matrix: Buffer
    transposed: bool
    ones: Buffer
    beta: float
    out: Buffer


class Lowering(Schedule):
    """Pass 2 of the NumPy target: statements over preallocated arrays.

    With ``blas`` (train_step only, no penalty term in the gradients) the update is fused into the
    products with BLAS's β = 1: each weight gradient's GEMM accumulates α = −1 times lr·∂J/∂W_k (the
    reduction factor already carries lr) straight into W_k, each bias gradient's sum over the
    examples into b_k (a GEMV), and each forward product starts from the broadcast bias instead of
    adding it after: no gradient arrays, no update pass, no bias pass.  Every product is still the
    one the program records, and each parameter is updated after the last statement that reads it.
    """

    def __init__(self, program: Program, blas: bool = False):
        super().__init__(program)
        self.statements: list = []
        self.temps: list[Buffer] = []
        self.free_temps: dict = {}
        self._live: list[Buffer] = []
        self.uses: dict = {}
        self.blas = blas and fusable(program)
        self.parameters = {b.op.name: b for b in self.alg.buffers.values() if isinstance(b.op, Input)}
        self.emitted: set = set()
        self._count_uses()
        self._sums_early()
        for buffer in self.order:
            self._emit(buffer)
            self.emitted.add(buffer)
        self.in_order = not self.blas or self._updates_last()  # else the BLAS form is not printed

    def _count_uses(self):
        """How often each buffer is read (``uses``) and by which buffers' statements (``readers``;
        None for the function's outputs, which are read after the last statement)."""
        counts: dict = {}
        readers: dict = {}

        def read(buffer, by, times=1):
            counts[buffer] = counts.get(buffer, 0) + times
            readers.setdefault(buffer, []).extend([by] * times)

        def count(expr, by, weight=1):
            expr = sympy.sympify(expr)
            for buffer in self.alg.buffers_in(expr):
                read(buffer, by, expr.count(buffer.symbol) * weight)

        for buffer in self.order:
            op = buffer.op
            if buffer in self.rewritten:
                count(self.rewritten[buffer], buffer)
            elif isinstance(op, Product):
                read(op.left, buffer)
                read(op.right, buffer)
            elif isinstance(op, Softmax):
                read(op.z, buffer, 2)
        for symbol in self.program.outputs.values():
            count(symbol, None, 2)
        self.uses = counts
        self.readers = readers

    def _sums_early(self):
        """Each δ·1 (a bias gradient) right after its δ, while δ is still in cache: after the
        weight gradient's GEMM it is read back from memory (~2× the time on 1024-wide layers).
        It reads only δ and the ones, so computing it earlier changes no value."""
        sums = [b for b in self.order if isinstance(b.op, Product) and isinstance(b.op.right.op, Input)
                and b.op.right.op.name == "ones" and b.op.left in self.order]
        for buffer in sums:
            self.order.remove(buffer)
            self.order.insert(self.order.index(buffer.op.left) + 1, buffer)

    # ---- pass 2: statements
    def storage(self, buffer: Buffer) -> Buffer:
        while buffer.storage is not None:
            buffer = buffer.storage
        return buffer

    def _emit(self, buffer: Buffer):
        op = buffer.op
        if isinstance(op, (Input, SoftmaxPart)) or op is None:
            return
        if isinstance(op, Product):
            self._product(buffer, op)
        elif isinstance(op, Softmax):
            self._softmax(buffer, op)
        elif isinstance(op, Map):
            expr = self.rewritten[buffer]
            if not buffer.shape:
                return  # a scalar: printed as a Python expression where it is used
            reused = self._reusable(expr, buffer)  # a buffer read here for the last time
            alias = self.storage(reused) if reused is not None else None
            if alias is not None:
                buffer.storage = alias
            if not self._bias_first(expr, buffer, alias):
                self.into(expr, buffer, reused.symbol if reused is not None else None)
            self._release()
        elif isinstance(op, ExampleSum):
            arg = self.operand(self.rewritten[buffer])
            self._sum_units(arg, op.axis, buffer)
            self._release()
        elif isinstance(op, Total):
            arg = self.operand(self.rewritten[buffer])
            self.statements.append(ScalarTotal(buffer, arg))
            self._release()

    def _bias_first(self, expr, buffer, alias) -> bool:
        """blas: P + b with the product P just computed into this array → the broadcast b first,
        then P's GEMM with β = 1 adds onto it (one pass over the array fewer)."""
        if not self.blas or alias is None or not isinstance(expr, Add) or len(expr.args) != 2:
            return False
        last = self.statements[-1] if self.statements else None
        if not (isinstance(last, Call) and last.function == "matmul" and last.out is alias):
            return False
        product = next((self.alg.buffers[t] for t in expr.args if self.storage(self.alg.buffers.get(t, buffer)) is alias
                        and isinstance(self.alg.buffers[t].op, Product)), None)
        bias = next((self.alg.buffers[t] for t in expr.args if t in self.alg.buffers
                     and isinstance(self.alg.buffers[t].op, Input) and self.alg.buffers[t].op.name.startswith("b")), None)
        if product is None or bias is None:
            return False
        op = product.op
        self.statements[-1] = Call("copyto", (alias, bias), None)
        self.statements.append(Gemm(1.0, op.left, op.left_t, op.right, op.right_t, 1.0, alias))
        return True

    def _reusable(self, expr, buffer) -> Buffer | None:
        """A product or map read here for the last time, once, with the result's shape: the
        result is computed in its array."""
        if buffer in self.keep:
            return None
        for candidate in self.alg.buffers_in(expr):
            if (isinstance(candidate.op, (Product, Map)) and candidate not in self.keep
                    and self._last_read(candidate, buffer) and candidate.shape == buffer.shape
                    and not candidate.vector and expr.count(candidate.symbol) == 1):
                return candidate
        return None

    def _last_read(self, candidate, buffer) -> bool:
        """``buffer``'s statement reads ``candidate`` once and is the last to read it (every other
        reader already emitted): its array is free to take the result (step(z) of a ReLU into z's
        array once a = relu(z) is computed: one array fewer to write and to read back)."""
        others = [r for r in self.readers.get(candidate, []) if r is not buffer]
        return len(others) == len(self.readers.get(candidate, [])) - 1 and all(
            r is not None and r in self.emitted for r in others)

    def _updated(self, buffer) -> Buffer | None:
        """The parameter a gradient output is accumulated into (blas), else None."""
        if not self.blas or buffer not in self.keep or not buffer.role.startswith(("GW", "Gb")):
            return None
        return self.parameters[buffer.role[1:]]

    def _updates_last(self) -> bool:
        """Whether each in-place parameter update comes after every statement reading the parameter
        (true of the recorded order: the weight gradients come last, each bias is read in the
        forward pass only); if not, the BLAS form is not used."""
        for index, update in enumerate(self.statements):
            if isinstance(update, (Gemm, Gemv)) and isinstance(update.out.op, Input):
                if any(update.out in _reads(s) for s in self.statements[index + 1:]):
                    return False
        return True

    def _product(self, buffer, op: Product):
        left, right = op.left, op.right
        parameter = self._updated(buffer)
        if parameter is not None:
            if isinstance(right.op, Input) and right.op.name == "ones":
                self.statements.append(Gemv(-1.0, left, op.left_t, right, 1.0, parameter))
            else:
                self.statements.append(Gemm(-1.0, left, op.left_t, right, op.right_t, 1.0, parameter))
            return
        if isinstance(right.op, Input) and right.op.name == "ones":  # δ·1: a sum over the examples
            # rows: δᵀ1 = 1ᵀδ (ones @ D); columns: δ1 (D @ ones); the result is stored 1-D
            self.statements.append(Call("matmul", (right, left) if op.left_t else (left, right), buffer))
            buffer.vector = True
            return
        a = Transposed(left) if op.left_t else left
        b = Transposed(right) if op.right_t else right
        self.statements.append(Call("matmul", (a, b), buffer))

    def _sum_units(self, arg, axis, out):
        """Each example's sum over units, as a product with ones (~3× faster than add.reduce on
        short rows)."""
        n = self.alg.shape(arg.symbol if isinstance(arg, Buffer) else arg)[axis]
        if axis == 1:
            self.statements.append(Call("matmul", (arg, UnitOnes((n, 1))), out))
        else:
            self.statements.append(Call("matmul", (UnitOnes((1, n)), arg), out))

    def _softmax(self, buffer, op: Softmax):
        z = op.z
        width = z.shape[op.axis]
        if op.axis == 1 and isinstance(width, int) and width <= 64:
            # the maximum over each short row: NumPy reduces a (m, n) array along its rows one short
            # inner loop per example (~8 µs for 128 × 10); copied to (n, m) it is n − 1 vector passes
            # over contiguous rows (with the copy ~2 µs)
            columns = self.temp((width, z.shape[0]))
            self.statements.append(Call("copyto", (columns, Transposed(z)), None))
            self.statements.append(Reduce("maximum", columns, 0, Transposed(op.shift)))
            self._release()
        else:
            self.statements.append(Reduce("maximum", z, op.axis, op.shift))
        self.statements.append(Call("subtract", (z, op.shift), buffer))
        self.statements.append(Call("exp", (buffer,), buffer))
        self._sum_units(buffer, op.axis, op.total)
        self.statements.append(Call("divide", (buffer, op.total), buffer))

    # ---- elementwise expressions
    def temp(self, shape) -> Buffer:
        pool = self.free_temps.setdefault(shape, [])
        if pool:
            buffer = pool.pop()
        else:
            buffer = self.alg.new(shape, None, f"T{len(self.temps)}")
            self.temps.append(buffer)
        self._live.append(buffer)
        return buffer

    def _release(self):
        for buffer in self._live:
            self.free_temps.setdefault(buffer.shape, []).append(buffer)
        self._live = []

    def operand(self, expr):
        """A buffer or constant holding ``expr`` (computed into a temporary if compound)."""
        expr = sympy.sympify(expr)
        if expr.is_Number:
            return Constant(float(expr))
        if expr in self.alg.buffers:
            return self.storage(self.alg.buffers[expr])
        if expr in RUNTIME_SCALARS:
            return expr
        target = self.temp(self.alg.shape(expr))
        self.into(expr, target)
        return target

    def call(self, function, args, out):
        self.statements.append(Call(function, tuple(args), self.storage(out)))

    def into(self, expr, out: Buffer, alias=None):
        """Emit ``expr`` into ``out``; ``alias`` (a symbol sharing out's array) is read first."""
        if expr.is_Number or expr in self.alg.buffers or expr in RUNTIME_SCALARS:
            source = self.operand(expr)
            if source is not self.storage(out):
                self.statements.append(Call("copyto", (out, source), None))
            return
        if isinstance(expr, Add):
            return self._sum(expr, out, alias)
        if isinstance(expr, Mul):
            return self._product_terms(expr, out, alias)
        if isinstance(expr, Pow):
            base, exponent = expr.args
            if exponent == 2:
                return self._unary("square", base, out, alias)
            if exponent == -1:
                return self._unary("reciprocal", base, out, alias)
            if exponent == sympy.Rational(1, 2):
                return self._unary("sqrt", base, out, alias)
            self._head(base, out, alias, then=lambda acc: self.call("power", (acc, self.operand(exponent)), out))
            return
        if isinstance(expr, rules.Atom):
            return self.into(_numeric_form(expr), out, alias)
        function = _UNARY.get(type(expr))
        if function is not None:
            return self._unary(function, expr.args[0], out, alias)
        if isinstance(expr, (sympy.Max, sympy.Min)):
            function = "maximum" if isinstance(expr, sympy.Max) else "minimum"
            return self._fold(function, list(expr.args), out, alias)
        if isinstance(expr, sympy.Heaviside):
            # H(x) with H(0) = 0 is x > 0 (and with H(0) = 1, x ≥ 0): a comparison is ~10× faster
            # than NumPy's heaviside, which has no vectorised loop
            at_zero = expr.args[1] if len(expr.args) > 1 else sympy.Rational(1, 2)
            test = {0: ("greater", 0), 1: ("greater_equal", 0)}.get(at_zero, ("heaviside", at_zero))
            return self._head(expr.args[0], out, alias,
                              then=lambda acc: self.call(test[0], (acc, self.operand(test[1])), out))
        if isinstance(expr, rules.LogAddExp):
            return self._fold("logaddexp", list(expr.args), out, alias)
        raise KernelError(f"no NumPy form for {type(expr).__name__} ({expr})")

    def _head(self, expr, out, alias, then):
        """Compute ``expr`` (into out if compound), then call ``then`` with where it is."""
        if _compound(expr):
            self.into(expr, out, alias)
            then(out)
        else:
            then(self.operand(expr))

    def _unary(self, function, arg, out, alias):
        self._head(arg, out, alias, then=lambda acc: self.call(function, (acc,), out))

    def _ordered(self, terms, alias):
        """The term holding ``alias`` first (it must be read before out is written), then compound ones."""
        return sorted(terms, key=lambda t: (not (alias is not None and t.has(alias)), not _compound(t)))

    def _fold(self, function, terms, out, alias, finish=True):
        """``terms`` combined by ``function`` into out; the first op reads a leaf head directly."""
        terms = self._ordered(terms, alias)
        head, rest = terms[0], terms[1:]
        if _compound(head):
            self.into(head, out, alias)
            acc = out
        else:
            acc = self.operand(head)
        for term in rest:
            self.call(function, (acc, self.operand(term)), out)
            acc = out
        return self._finish(acc, out) if finish else acc

    def _finish(self, acc, out):
        if acc is not out and acc is not self.storage(out):
            self.statements.append(Call("copyto", (out, acc), None))
        return out

    def _sum(self, expr, out, alias):
        constant, positive, negative = Integer(0), [], []
        for term in expr.args:
            if term.is_Number:
                constant += term
                continue
            c, rest = term.as_coeff_Mul()
            (negative if c < 0 else positive).append(-term if c < 0 else term)
        if positive:
            acc = self._fold("add", positive, out, alias, finish=False)
        elif constant:
            acc, constant = Constant(float(constant)), Integer(0)  # c − x: the constant is the head
        else:
            head, *negative = self._ordered(negative, alias)
            self._head(head, out, alias, then=lambda source: self.call("negative", (source,), out))
            acc = out
        if isinstance(acc, Constant) and len(negative) == 1 and _compound(negative[0]):
            # c − x with x compound (1 − a² of tanh′): x straight into out, then c − out in place,
            # one pass and one array fewer than x into a temporary
            self.into(negative[0], out, alias)
            self.call("subtract", (acc, out), out)
            acc, negative = out, []
        for term in negative:
            self.call("subtract", (acc, self.operand(term)), out)
            acc = out
        if constant:
            self.call("add", (acc, Constant(float(constant))), out)
            acc = out
        self._finish(acc, out)

    def _product_terms(self, expr, out, alias):
        coefficient, rest = expr.as_coeff_Mul()
        numerator, denominator = [], []
        for factor in Mul.make_args(rest):
            base, exponent = factor.as_base_exp()
            if exponent.is_Integer and exponent < 0:
                denominator.append(base ** -exponent)
            else:
                numerator.append(factor)
        if not numerator:
            numerator = [coefficient]
            coefficient = Integer(1)
        if len(numerator) == 1 and coefficient != 1:
            numerator.append(coefficient)
            coefficient = Integer(1)
        if len(numerator) == 1 and not denominator:
            return self.into(numerator[0], out, alias)
        self._fold("multiply", [t for t in numerator], out, alias)
        for factor in denominator:
            self.call("divide", (out, self.operand(factor)), out)
        if coefficient != 1:
            self.call("multiply", (out, Constant(float(coefficient))), out)


_UNARY = {sympy.tanh: "tanh", sympy.exp: "exp", sympy.log: "log", sympy.Abs: "absolute"}


def fusable(program: Program) -> bool:
    """train_step whose every gradient is one product (no penalty term): its update can be fused."""
    if program.name != "train_step":
        return False
    return all(isinstance(program.alg.buffers[s].op, Product) for s in program.outputs.values())


def _reads(statement) -> set:
    if isinstance(statement, Gemm):
        return {statement.left, statement.right} | ({statement.out} if statement.beta else set())
    if isinstance(statement, Gemv):
        return {statement.matrix, statement.ones, statement.out}
    if isinstance(statement, Call):
        return {a.buffer if isinstance(a, Transposed) else a for a in statement.args}
    if isinstance(statement, Reduce):
        return {statement.arg}
    if isinstance(statement, ScalarTotal):
        return {statement.arg}
    return set()


def _compound(expr) -> bool:
    return not (expr.is_Symbol or expr.is_Number)


# ------------------------------------------------------------------------------- printing


class KernelPrinter(NumPyPrinter):
    """Prints lowered statements as NumPy calls; scalar expressions as Python arithmetic.

    Buffers print as the names of the arrays they live in, constants as 0-d arrays of the kernel's
    dtype (a Python float argument costs a conversion on every call), transposes as ``.T`` views.
    """

    def __init__(self, names: dict, constants: dict):
        super().__init__({"fully_qualified_modules": False, "inline": True})
        self.names = names
        self.constants = constants

    def _print_Buffer(self, buffer):
        return self.names[buffer]

    def _print_Transposed(self, operand):
        return f"{self._print(operand.buffer)}.T"

    def _print_Constant(self, constant):
        return self.constants.setdefault(constant.value, f"K{len(self.constants)}")

    def _print_UnitOnes(self, ones):
        return self.constants.setdefault(ones, f"ONES_{'x'.join(map(str, ones.shape))}")

    def _print_Symbol(self, symbol):
        return self.names.get(symbol, symbol.name)

    def _print_Call(self, call):
        if call.function == "copyto":
            return f"copyto({self._print(call.args[0])}, {self._print(call.args[1])})"
        args = ", ".join(self._argument(a) for a in call.args)
        if call.function in ("maximum", "minimum"):  # NumPy deprecates a positional out for these two
            return f"{call.function}({args}, out={self._print(call.out)})"
        return f"{call.function}({args}, {self._print(call.out)})"

    def _argument(self, arg):
        if isinstance(arg, Symbol) and arg in RUNTIME_SCALARS:
            return f"{arg.name}_"  # the run-time scalar as a 0-d array
        return self._print(arg)

    def _print_Gemm(self, g):
        # outᵀ = α·op(right)ᵀ·op(left)ᵀ + β·outᵀ on the Fortran-ordered .T views (Gemm's docstring)
        return (f"gemm({g.alpha!r}, {self._print(g.right)}.T, {self._print(g.left)}.T, {g.beta!r}, "
                f"{self._print(g.out)}.T, {int(g.right_t)}, {int(g.left_t)}, 1)")

    def _print_Gemv(self, g):
        out = g.out.op.name if isinstance(g.out.op, Input) else self._print(g.out)  # b_k itself, 1-D
        return (f"gemv({g.alpha!r}, {self._print(g.matrix)}.T, {self._print(g.ones)}, {g.beta!r}, {out}, "
                f"0, 1, 0, 1, {int(not g.transposed)}, 1)")

    def _print_Reduce(self, reduce):
        return (f"{reduce.ufunc}.reduce({self._print(reduce.arg)}, {reduce.axis}, None, "
                f"{self._print(reduce.out)}, {reduce.keepdims})")

    def _print_ScalarTotal(self, total):
        return f"{self._print(total.target)} = float(add.reduce({self._print(total.arg)}, None))"

    def _print_Shape(self, shape):
        return "(" + "".join(f"{self._print(d)}, " for d in shape) + ")"

    def _print_Float(self, number):
        return repr(float(number))

    def _print_Rational(self, number):
        return repr(float(number)) if number.q != 1 else str(number.p)


class Shape(tuple):
    """A buffer's shape, printed with the batch size ``m`` as a variable."""


UFUNCS = ("add", "subtract", "multiply", "divide", "negative", "reciprocal", "square", "sqrt", "power",
          "tanh", "exp", "log", "absolute", "maximum", "minimum", "heaviside", "greater", "greater_equal",
          "logaddexp", "matmul",
          "copyto")


def _function_source(program: Program, constants: dict, *, blas: bool = False, function: str | None = None) -> str | None:
    """One function of the module; with ``blas`` train_step's fused form (None if it has none)."""
    spec, alg = program.spec, program.alg
    lowering = Lowering(program, blas)
    if blas and not (lowering.blas and lowering.in_order):
        return None
    function = function or program.name
    L, columns = spec.depth, spec.layout == "columns"
    # ---- names: inputs by their own names, arrays by the role of the last quantity stored there
    names: dict = {}
    roots: dict = {}
    for buffer in alg.buffers.values():
        if isinstance(buffer.op, Input):
            name = buffer.op.name
            names[buffer] = f"{name}c" if (columns and name.startswith("b")) else name
    for buffer in lowering.order + lowering.temps:
        if isinstance(buffer.op, Input) or lowering._updated(buffer) is not None:
            continue  # an input, or a gradient accumulated straight into its parameter
        root = lowering.storage(buffer)
        if buffer.role or root not in roots:
            roots[root] = buffer.role  # the last named quantity computed in this array
    used = set(names.values())
    allocated = []
    for root, role in roots.items():
        names[root] = fresh_name(role, used)
        allocated.append(root)
    for buffer in lowering.order:
        if lowering._updated(buffer) is None:
            names.setdefault(buffer, names[lowering.storage(buffer)])
    for symbol, buffer in alg.buffers.items():
        if buffer in names:
            names[symbol] = names[buffer]
    printer = KernelPrinter(names, constants)

    grads = [f"{q}{k}" for k in range(1, L + 1) for q in ("W", "b")]
    gradient_buffers = {g: alg.buffers[program.outputs[g]] for g in grads if g in program.outputs and not lowering.blas}
    scratch = [b for b in allocated if b not in gradient_buffers.values() and b.shape]
    lines = []
    header = {"forward": "params, X", "loss": "params, X, Y", "loss_and_grads": "params, X, Y",
              "train_step": "params, X, Y, lr"}[program.name]
    lines.append(f"def {function}({header}):")
    lines.append(f'    """{_FUNCTION_DOCS[function]}"""')
    if program.name != "train_step":  # the hot loop takes checked arrays (kernel_checks)
        lines.append(f"    _check_inputs({program.name!r}, {'X' if program.name == 'forward' else 'X, Y'})")
    if lowering.blas:  # W_k.T must be the Fortran-ordered array BLAS writes into: Params' views are
        lines.append("    if BLAS is None:")
        lines.append("        _load_blas()")
        lines.append("    if not BLAS or type(params) is not Params:")
        lines.append("        return _train_step_numpy(params, X, Y, lr)")
    lines.append(f"    m = X.shape[{1 if columns else 0}]")
    cache = f"_BUFFERS_{function.upper().lstrip('_')}"
    needed = {b for b in lowering.order if isinstance(b.op, Input)}
    ones = any(b.op.name == "ones" for b in needed)
    unpacked = [names[b] for b in scratch] + (["ones"] if ones else [])
    if gradient_buffers:
        unpacked += ["G", "grads"] + [names[gradient_buffers[name]] for name in grads]
    unpacked = ", ".join(unpacked) + ","
    shapes = ", ".join(printer._print(Shape(b.shape)) for b in scratch)
    lines.append("    try:")
    lines.append(f"        {unpacked} = {cache}[m]")
    lines.append("    except KeyError:")
    lines.append(f"        {unpacked} = {cache}[m] = _allocate(m, ({shapes}{',' if scratch else ''}), "
                 f"{ones}, {bool(gradient_buffers)})")
    for k in range(1, L + 1):
        for kind in ("W", "b"):
            if any(b.op.name == f"{kind}{k}" for b in needed) or program.name == "train_step":
                lines.append(f'    {kind}{k} = params["{kind}{k}"]')
                if kind == "b" and columns and any(b.op.name == f"b{k}" for b in needed):
                    lines.append(f"    b{k}c = b{k}[:, None]")
    scalars = {s for stmt_buffer in lowering.rewritten.values() for s in stmt_buffer.free_symbols} | set(
        sympy.sympify(program.outputs.get("loss", 0)).free_symbols)
    if SCALE in scalars:
        rate = "lr" if program.name == "train_step" else "1.0"
        lines.append(f"    c = {rate} / m" if spec.reduction == "mean" else f"    c = {rate}")
        lines.append("    c_.fill(c)")
    if RATE in scalars:
        lines.append("    lr_.fill(lr)")
    for statement in lowering.statements:
        lines.append(f"    {printer._print(statement)}")
    if program.name == "forward":
        lines.append(f"    return {names[alg.buffers[program.outputs['output']]]}")
    elif program.name == "train_step":
        if lowering.blas:
            return "\n".join(lines)  # the update is done
        lines.append("    if type(params) is Params:  # one flat array: one update")
        lines.append("        subtract(params.flat, G, params.flat)")
        lines.append("    else:")
        for g in grads:
            lines.append(f"        subtract({g}, {names[gradient_buffers[g]]}, {g})")
    else:
        loss = printer._print(program.outputs["loss"])
        if program.name == "loss":
            lines.append(f"    return {loss}")
        else:
            lines.append(f"    return {loss}, grads")
    return "\n".join(lines)


_FUNCTION_DOCS = {
    "forward": "The network's output a_L for the batch X (an array reused by the next call).",
    "loss": "J(params; X, Y): the mean (or sum) over the batch of the per-example loss.",
    "loss_and_grads": "(J, {'W1': ∂J/∂W1, 'b1': ∂J/∂b1, …}); the gradient arrays are reused by the next call.",
    "train_step": "One SGD step in place: θ ← θ − lr·∂J/∂θ for every parameter.",
    "_train_step_numpy": "train_step with NumPy only: the gradients into arrays, then one subtract per array (or "
                         "one over the flat parameters).",
}

_RUNTIME = '''

class Params(dict):
    """W1, b1, … as views into one flat array ``flat``; assigning an entry copies into its view."""

    def __init__(self, flat=None):
        self.flat = np.zeros(SIZE, DTYPE) if flat is None else flat
        dict.__init__(self, _views(self.flat))

    def __setitem__(self, name, value):
        self[name][...] = value


def _views(flat):
    views, offset = {}, 0
    for name, shape in PARAMETERS:
        size = int(np.prod(shape))
        views[name] = flat[offset:offset + size].reshape(shape)
        offset += size
    return views


def init_params(seed=0):
    """Random weights N(0, v/fan_in) (v = 2 for ReLU-like layers, else 1) and zero biases."""
    rng = np.random.default_rng(seed)
    params = Params()
    for k, (fan_in, fan_out, variance) in enumerate(zip(WIDTHS[:-1], WIDTHS[1:], INIT_VARIANCE), start=1):
        params[f"W{k}"] = rng.normal(0.0, (variance / fan_in) ** 0.5, size=(fan_out, fan_in))
    return params


def _allocate(m, shapes, ones, gradients):
    """A function's arrays for batch size m: scratch, [ones(m)], [flat gradient, its views]."""
    arrays = tuple(np.empty(shape, DTYPE) for shape in shapes)
    if ones:
        arrays += (np.ones(m, DTYPE),)
    if gradients:
        G = np.empty(SIZE, DTYPE)
        views = _views(G)
        arrays += (G, views) + tuple(views.values())
    return arrays
'''


@dataclass
class Kernel:
    """A compiled kernel: the four functions, ``init_params``, and the module source they came from."""

    spec: NetworkSpec
    dtype: str
    source: str
    module: types.ModuleType
    seconds: float
    target: str = "numpy"

    def __getattr__(self, name):
        try:
            return getattr(self.__dict__["module"], name)
        except AttributeError:
            raise AttributeError(name) from None

    def __repr__(self) -> str:
        engine = {"numpy": "NumPy", "torch": "PyTorch", "jax": "JAX"}.get(self.target, self.target)
        return f"<Kernel {self.spec.describe()}, {self.dtype}: {len(self.source.splitlines())} lines of {engine}>"


def generate(spec: NetworkSpec, dtype: str = "float64", *, penalty: float | None = None,
             proofs: list | None = None, target: str = "numpy", blas: bool = True) -> str:
    """The source of a standalone module implementing the kernel: NumPy, or PyTorch / JAX
    (``target``; see :mod:`symbackprop.kernel_targets`).  The NumPy module runs on NumPy alone;
    with ``blas`` its train_step also has the fused form that uses SciPy's BLAS where SciPy is
    installed (the update accumulated into the parameters: ≈5–10 % faster on big networks);
    ``blas=False`` writes a module that imports only NumPy."""
    if dtype not in ("float32", "float64"):
        raise KernelError(f"dtype must be float32 or float64, not {dtype!r}")
    for row in spec.activations:
        if row.definition is None and not row.vector:
            raise KernelError(f"activation {row.name} has no numeric form: kernels need a concrete function")
    if target != "numpy":
        return kernel_targets.generate(spec, target, dtype, penalty=penalty, proofs=proofs)
    built = programs(spec, penalty)
    constants: dict = {}
    # train_step's BLAS form is lowered from a fresh program: lowering marks buffers (storage)
    fused = _function_source(programs(spec, penalty)["train_step"], constants, blas=True) if blas else None
    functions = [_function_source(p, constants, function="_train_step_numpy" if fused and p.name == "train_step" else None)
                 for p in built.values()]
    if fused is not None:
        functions.insert(len(functions) - 1, fused)
    n = spec.widths
    parameters = ", ".join(f'("W{k}", ({n[k]}, {n[k - 1]})), ("b{k}", ({n[k]},))' for k in range(1, spec.depth + 1))
    size = sum(n[k] * n[k - 1] + n[k] for k in range(1, spec.depth + 1))
    lines = [f'"""{module_docstring(spec, dtype, built, proofs, penalty, blas=fused is not None)}"""', "",
             "import numpy as np",
             f"from numpy import {', '.join(UFUNCS)}", ""]
    if fused is not None:
        prefix = "s" if dtype == "float32" else "d"
        lines += ["gemm = gemv = None  # SciPy's BLAS, imported by the first train_step (~0.2 s: not at import)",
                  "BLAS = None  # which form train_step runs: True SciPy's BLAS, False NumPy only (None: not yet run)",
                  "",
                  "",
                  "def _load_blas():",
                  "    global gemm, gemv, BLAS",
                  "    try:  # train_step accumulates its update into the parameters (GEMM with β = 1)",
                  f"        from scipy.linalg.blas import {prefix}gemm as gemm, {prefix}gemv as gemv",
                  "    except ImportError:  # NumPy only: train_step runs _train_step_numpy",
                  "        gemm = gemv = None",
                  "    BLAS = gemm is not None",
                  ""]
    lines += [
             f"DTYPE = np.{dtype}",
             f"WIDTHS = {tuple(n)!r}",
             f"LAYOUT = {spec.layout!r}",
             f"PARAMETERS = ({parameters},)",
             f"SIZE = {size}",
             f"INIT_VARIANCE = {tuple(row.init_variance for row in spec.activations)!r}"]
    for value, name in constants.items():
        if isinstance(value, UnitOnes):
            lines.append(f"{name} = np.ones({value.shape!r}, DTYPE)")
        else:
            lines.append(f"{name} = np.array({value!r}, DTYPE)")
    lines.append("c_ = np.empty((), DTYPE)  # run-time scalars as 0-d arrays")
    lines.append("lr_ = np.empty((), DTYPE)")
    lines.append(f"l2_ = np.array({float(penalty or 0.0)!r}, DTYPE)")
    lines.append(f"l2 = {float(penalty or 0.0)!r}")
    lines.append(_RUNTIME)
    lines.append(kernel_checks.SOURCE)
    for name in list(built) + (["train_step_numpy"] if fused is not None else []):
        lines.append(f"_BUFFERS_{name.upper()} = {{}}")
    for source in functions:
        lines += ["", "", source]
    return "\n".join(lines) + "\n"


def compile_module(source: str, name: str = "symbackprop_kernel") -> types.ModuleType:
    module = types.ModuleType(name)
    exec(compile(source, f"<{name}>", "exec"), module.__dict__)  # noqa: S102 - our own generated code
    return module


def build(spec: NetworkSpec, dtype: str = "float64", *, penalty: float | None = None,
          target: str = "numpy", blas: bool = True) -> Kernel:
    """Derive, generate and compile the kernel for ``spec`` (no proofs: see :func:`kernel_proofs`)."""
    started = time.perf_counter()
    source = generate(spec, dtype, penalty=penalty, target=target, blas=blas)
    module = compile_module(source, f"symbackprop_{target}_kernel")
    return Kernel(spec, dtype, source, module, time.perf_counter() - started, target)


# -------------------------------------------------------------------------------- proofs


def _equal_everywhere(lhs, rhs, variables) -> bool:
    """lhs = rhs on all of ℝⁿ: equal at 0 and every partial derivative of lhs − rhs is 0.

    Both sides are smooth on the connected ℝⁿ, so this is a proof.  Each partial derivative is
    a rational function once exp(v/2) is a positive symbol t_v (``cancel`` decides it exactly);
    the value at 0 is a constant SymPy evaluates exactly (log(1/2) + log 2 → 0).
    """
    difference = elementary(lhs - rhs).rewrite(sympy.exp)
    at_zero = difference.subs({v: 0 for v in variables})
    if sympy.simplify(at_zero) != 0:
        return False
    halves = {v: sympy.Symbol(f"u_{v}", real=True) for v in variables}
    ts = {h: sympy.Symbol(f"t_{v}", positive=True) for v, h in halves.items()}
    for v in variables:
        partial = sympy.diff(difference, v).subs({w: 2 * h for w, h in halves.items()})
        partial = sympy.expand_power_exp(partial.rewrite(sympy.exp))
        partial = partial.subs({sympy.exp(h): t for h, t in ts.items()})
        if partial.has(sympy.exp) or sympy.cancel(sympy.together(partial)) != 0:
            return False
    return True


def _forms(spec: NetworkSpec):
    """(name, statement, lhs, rhs, variables) for every stable form the kernel computes."""
    x, c = sympy.Symbol("x", real=True), sympy.Symbol("c", real=True)
    rows = [row for row, _ in lemmas_for(spec)] + list(spec.activations)
    seen, forms = set(), []
    for row in rows:
        if row in seen:
            continue
        seen.add(row)
        if row.vector:
            n = spec.widths[-1]
            zs = sympy.symbols(f"z1:{n + 1}", real=True)
            node = row.atom(0, *zs)
            forms.append((f"{row.name} (shift)", f"softmax_i(z) = exp(z_i − c)/Σ_j exp(z_j − c) for any c (n = {n})",
                          row.unfold(node), row.stable(0, zs, c), [*zs, c]))
            if spec.loss_rule.name in ("cross_entropy", "bce"):
                forms.append((f"log {row.name}", f"log softmax_i(z) = z_i − c − log Σ_j exp(z_j − c) (n = {n})",
                              sympy.log(row.unfold(node)), row.log_form(0, zs, c), [*zs, c]))
            continue
        if row.stable is not None and row.definition is not None:
            forms.append((row.name, f"{row.name}(x) = {sympy.sstr(row.definition(x))} computed as "
                                    f"{sympy.sstr(row.stable(x))}", row.definition(x),
                          row.stable(x), [x]))
        if row is spec.activations[-1] and spec.loss_rule.name in ("cross_entropy", "bce"):
            if row.log_form is not None:
                forms.append((f"log {row.name}", f"log {row.name}(x) = {sympy.sstr(row.log_form(x))}",
                              sympy.log(row.definition(x)), row.log_form(x), [x]))
            if row.log_complement_form is not None and spec.loss_rule.name == "bce":
                forms.append((f"log(1 − {row.name})", f"log(1 − {row.name}(x)) = {sympy.sstr(row.log_complement_form(x))}",
                              sympy.log(1 - row.definition(x)), row.log_complement_form(x), [x]))
    return forms


def stable_form_lemmas(spec: NetworkSpec, timeout: float = 20.0) -> list:
    """Each overflow-free form the kernel computes, proved equal to the textbook definition."""
    results = []
    for name, statement, lhs, rhs, variables in _forms(spec):
        started = time.perf_counter()
        try:
            with budget.budget(timeout):
                ok = _equal_everywhere(lhs, rhs, variables)
            verdict = Verdict(PROVED if ok else UNDECIDED, "general" if len(variables) == 1 else "instance",
                              "derivative 0 (cancel after exp(v/2) = t) and equal at 0" if ok else "",
                              message=statement if ok else f"{statement}: not shown")
        except budget.OutOfTime:
            verdict = Verdict(UNDECIDED, message=f"{statement}: ran out of the {timeout:g} s budget")
        verdict.seconds = time.perf_counter() - started
        results.append(LemmaResult(name, statement, verdict))
    return results


def proof_instance(spec: NetworkSpec) -> NetworkSpec:
    """A small network of the same kind (depth, activations, loss, layout): widths ≤ 3, batch 2."""
    return replace(spec, widths=tuple(min(n, 3) for n in spec.widths), batch=2)


@dataclass
class KernelProof:
    """What the kernel's formulas rest on, each with its verdict."""

    spec: NetworkSpec
    instance: NetworkSpec
    lemmas: list  # LemmaResult: derivative rules and stable forms
    network: object  # prove.NetworkProof of the recurrences on the small instance
    sgd: list  # QuantityResult: lr folded into δ_L gives lr·∂J/∂θ
    seconds: float

    @property
    def all_proved(self) -> bool:
        return (self.network.all_proved and all(l.verdict.proved for l in self.lemmas)
                and all(r.verdict.proved for r in self.sgd))

    def __repr__(self) -> str:
        return f"<KernelProof {self.spec.describe()}: {'all' if self.all_proved else 'NOT all'} proved>"

    def lines(self) -> list[str]:
        lines = ["Lemmas (derivative rules and the overflow-free forms the code computes):"]
        for lemma in self.network.lemmas + self.lemmas:
            lines.append(f"  {lemma.verdict.status:9s} {lemma.statement}  [{lemma.verdict.scope}]")
        proved = sum(r.verdict.proved for r in self.network.results)
        lines.append(f"Recurrences (backprop = direct differentiation, every ∂J/∂z_k, ∂J/∂W_k, ∂J/∂b_k): "
                     f"{proved} of {len(self.network.results)} proved on the instance {self.instance.describe()}")
        for r in self.network.results:
            if not r.verdict.proved:
                lines.append(f"  {r.quantity}{r.layer}: {r.verdict.status} — {r.verdict.message}")
        proved = sum(r.verdict.proved for r in self.sgd)
        lines.append(f"train_step (lr folded into δ_L gives lr·∂J/∂θ, lr any real number): {proved} of {len(self.sgd)} proved "
                     f"on the same instance")
        lines.append("Scope: instance proofs with exact arithmetic; `symbackprop prove --general` covers every "
                     "width and depth.")
        return lines


def kernel_proofs(spec: NetworkSpec, timeout: float = 60.0) -> KernelProof:
    """Prove what the kernel computes: lemmas, stable forms, recurrences and the SGD update."""
    from .derive import direct
    from .prove import QuantityResult, prove_network

    started = time.perf_counter()
    small = proof_instance(spec)
    network_proof = prove_network(small, timeout=timeout)
    net = Network(small)
    rate = sympy.Symbol("lr", real=True)  # any real factor: lr in train_step, the incoming gradient g of a VJP
    folded = SimpleNamespace(**vars(net))
    folded.reduction_factor = rate * net.reduction_factor
    if net.penalty is not None:
        folded.penalty = rate * net.penalty
    claimed, truth = backprop(folded), direct(net)
    decider = Decider(net)
    sgd = []
    for k in range(small.depth, 0, -1):
        for quantity in ("W", "b"):
            verdict = decider.decide(truth[quantity, k].map(lambda e: rate * e), claimed[quantity, k], timeout=timeout)
            sgd.append(QuantityResult(f"lr·∂J/∂{quantity}", k, verdict))
    lemmas = stable_form_lemmas(spec)
    return KernelProof(spec, small, lemmas, network_proof, sgd, time.perf_counter() - started)
