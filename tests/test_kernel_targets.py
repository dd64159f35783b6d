"""The PyTorch and JAX kernels: gradcheck / check_grads, equality with the engines' own autograd,
jit / vmap / grad, extreme logits, devices and dtypes, and modules that import no SymPy."""

from __future__ import annotations

import ast
import subprocess
import sys

import numpy as np
import pytest

from symbackprop import kernels
from symbackprop.cli import main
from symbackprop.network import NetworkSpec

from .optional import require
from .test_kernels import CASES, EXTREME, PENALTY, TORCH_CASES, case_id, random_problem, torch_loss

LAYOUTS = ["rows", "columns"]


def _spec(case, layout="rows", batch=6):
    return NetworkSpec(**case, batch=batch, layout=layout)


def _build(spec, target, dtype="float64"):
    return kernels.build(spec, dtype, penalty=PENALTY if spec.l2 else None, target=target)


def _numpy_reference(spec, values, X, Y):
    """(J, grads, output) of the NumPy kernel, copied out of its reused arrays."""
    kernel = _build(spec, "numpy")
    params = kernel.init_params(0)
    for name, value in values.items():
        params[name] = value
    J, grads = kernel.loss_and_grads(params, X, Y)
    return J, {n: g.copy() for n, g in grads.items()}, kernel.forward(params, X).copy()


# ------------------------------------------------------------------------------- PyTorch


@pytest.fixture(scope="module")
def torch():
    return require("torch")


def _torch_params(torch, values, dtype=None, requires_grad=False, device=None):
    dtype = dtype or torch.float64
    return {n: torch.tensor(v, dtype=dtype, device=device, requires_grad=requires_grad) for n, v in values.items()}


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_torch_gradcheck_float64(torch, case, layout):
    spec = _spec(case, layout, batch=4)
    module = _build(spec, "torch").module
    values, X, Y = random_problem(spec, np.random.default_rng(2), scale=0.7)
    params = _torch_params(torch, values, requires_grad=True)
    X, Y = torch.tensor(X), torch.tensor(Y)
    names = list(params)

    def J(*tensors):
        return module.loss(dict(zip(names, tensors)), X, Y)

    assert torch.autograd.gradcheck(J, tuple(params.values()), eps=1e-6, atol=1e-8, rtol=1e-6)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("case", TORCH_CASES, ids=case_id)
def test_torch_gradients_equal_torch_autograd(torch, case, layout):
    spec = _spec(case, layout, batch=16)
    penalty = PENALTY if spec.l2 else None
    module = _build(spec, "torch").module
    values, X, Y = random_problem(spec, np.random.default_rng(13), scale=0.5)
    mine = _torch_params(torch, values, requires_grad=True)
    J = module.loss(mine, torch.tensor(X), torch.tensor(Y))
    J.backward()
    theirs = _torch_params(torch, values, requires_grad=True)
    rows = (X, Y) if layout == "rows" else (X.T, Y.T)  # the reference is written with examples as rows
    expected = torch_loss(torch, spec, theirs, torch.tensor(rows[0]), torch.tensor(rows[1]), penalty)
    expected.backward()
    assert J.item() == pytest.approx(expected.item(), rel=1e-12)
    for name in mine:
        assert mine[name].grad.shape == theirs[name].grad.shape, name
        torch.testing.assert_close(mine[name].grad, theirs[name].grad, rtol=1e-10, atol=1e-13, msg=name)


@pytest.mark.parametrize("case", CASES[:4], ids=case_id)
def test_torch_functions_agree_with_the_numpy_kernel(torch, case):
    spec = _spec(case)
    module = _build(spec, "torch").module
    values, X, Y = random_problem(spec, np.random.default_rng(4))
    J0, grads0, output0 = _numpy_reference(spec, values, X, Y)
    params = _torch_params(torch, values)
    J, grads = module.loss_and_grads(params, torch.tensor(X), torch.tensor(Y))
    assert J.item() == pytest.approx(J0, rel=1e-12)
    for name in grads0:
        np.testing.assert_allclose(grads[name].numpy(), grads0[name], rtol=1e-11, atol=1e-14, err_msg=name)
    np.testing.assert_allclose(module.forward(params, torch.tensor(X)).numpy(), output0, rtol=1e-12)
    module.train_step(params, torch.tensor(X), torch.tensor(Y), 0.05)
    for name in values:
        np.testing.assert_allclose(params[name].numpy(), values[name] - 0.05 * grads0[name], rtol=1e-12, atol=1e-14)


def test_torch_model_is_an_nn_module_trained_by_an_optimizer(torch):
    spec = _spec(dict(widths=(5, 7, 3), hidden="tanh", output="softmax", loss="cross_entropy"), batch=8)
    module = _build(spec, "torch").module
    model = module.Model(seed=3)
    assert [name for name, _ in model.named_parameters()] == ["W1", "b1", "W2", "b2"]
    assert all(p.dtype == torch.float64 for p in model.parameters())
    rng = np.random.default_rng(0)
    X = torch.tensor(rng.normal(size=(8, 5)))
    Y = torch.tensor(np.eye(3)[rng.integers(0, 3, 8)])
    plain = module.init_params(3)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.3)
    for _ in range(3):
        optimizer.zero_grad()
        model.loss(X, Y).backward()
        optimizer.step()
        module.train_step(plain, X, Y, 0.3)
    for name, p in model.named_parameters():
        torch.testing.assert_close(p.detach(), plain[name], rtol=1e-12, atol=1e-14)
    assert model(X).shape == (8, 3)


def test_torch_loss_refuses_an_input_that_requires_grad(torch):
    spec = _spec(CASES[0])
    module = _build(spec, "torch").module
    values, X, Y = random_problem(spec, np.random.default_rng(0))
    with pytest.raises(ValueError, match="X and Y must not require grad"):
        module.loss(_torch_params(torch, values), torch.tensor(X, requires_grad=True), torch.tensor(Y))


def test_torch_inputs_are_checked_with_one_line_errors(torch):
    spec = _spec(CASES[0])
    module = _build(spec, "torch").module
    params = module.init_params(0)
    with pytest.raises(ValueError, match=r"X has shape \(3, 6\); expected m × 3, examples as rows \(it looks transposed"):
        module.loss(params, torch.zeros(3, 6, dtype=torch.float64), torch.zeros(6, 2, dtype=torch.float64))
    with pytest.raises(ValueError, match="X holds 4 examples but Y holds 5"):
        module.loss_and_grads(params, torch.zeros(4, 3, dtype=torch.float64), torch.zeros(5, 2, dtype=torch.float64))


def _extreme_problem(spec, logit):
    """A 4-example problem whose output biases are ±logit, and its float64 loss and gradients."""
    values, X, Y = random_problem(spec, np.random.default_rng(5), scale=0.1)
    n = spec.widths[-1]
    values[f"b{spec.depth}"] = np.where(np.arange(n) % 2 == 0, logit, -logit)
    Y = np.eye(n)[np.arange(4) % n] if spec.loss_rule.simplex_targets else (np.arange(4 * n).reshape(4, n) % 2) * 1.0
    J64, grads64, _ = _numpy_reference(spec, values, X, Y)
    return values, X, Y, J64, grads64


@pytest.mark.parametrize("logit", [1000.0, -1000.0])
@pytest.mark.parametrize("case", EXTREME, ids=case_id)
def test_torch_float32_stays_finite_for_extreme_logits(torch, case, logit):
    spec = _spec(case, batch=4)
    module = _build(spec, "torch", "float32").module
    values, X, Y, J64, grads64 = _extreme_problem(spec, logit)
    params = _torch_params(torch, values, dtype=torch.float32, requires_grad=True)
    J = module.loss(params, torch.tensor(X, dtype=torch.float32), torch.tensor(Y, dtype=torch.float32))
    J.backward()
    assert torch.isfinite(J) and J.item() == pytest.approx(J64, rel=1e-5)
    for name, p in params.items():
        assert p.grad.dtype == torch.float32 and bool(torch.isfinite(p.grad).all()), name
        np.testing.assert_allclose(p.grad.numpy(), grads64[name], rtol=1e-4, atol=1e-5, err_msg=name)


def test_torch_kernel_runs_in_bfloat16(torch):
    spec = _spec(dict(widths=(6, 8, 4), hidden="relu", output="softmax", loss="cross_entropy"), batch=8)
    module = _build(spec, "torch").module
    values, X, Y = random_problem(spec, np.random.default_rng(8), scale=0.5)
    J64, grads64, _ = _numpy_reference(spec, values, X, Y)
    params = _torch_params(torch, values, dtype=torch.bfloat16, requires_grad=True)
    J = module.loss(params, torch.tensor(X, dtype=torch.bfloat16), torch.tensor(Y, dtype=torch.bfloat16))
    J.backward()
    assert J.dtype == torch.bfloat16 and J.item() == pytest.approx(J64, rel=3e-2)
    for name, p in params.items():
        assert p.grad.dtype == torch.bfloat16, name
        np.testing.assert_allclose(p.grad.float().numpy(), grads64[name], rtol=0.1, atol=0.02, err_msg=name)


def test_torch_kernel_on_a_gpu(torch):
    if not torch.cuda.is_available():
        pytest.skip("no GPU on this machine (torch.cuda.is_available() is False): the CUDA test needs one")
    spec = _spec(dict(widths=(20, 16, 10), hidden="tanh", output="softmax", loss="cross_entropy"), batch=32)
    module = _build(spec, "torch").module
    values, X, Y = random_problem(spec, np.random.default_rng(9), scale=0.5)
    J64, grads64, _ = _numpy_reference(spec, values, X, Y)
    for dtype, tolerance in ((torch.float64, 1e-10), (torch.float32, 1e-4)):
        params = _torch_params(torch, values, dtype=dtype, requires_grad=True, device="cuda")
        J = module.loss(params, torch.tensor(X, dtype=dtype, device="cuda"), torch.tensor(Y, dtype=dtype, device="cuda"))
        J.backward()
        assert J.device.type == "cuda" and J.item() == pytest.approx(J64, rel=tolerance)
        for name, p in params.items():
            assert p.grad.device.type == "cuda" and p.grad.dtype == dtype
            np.testing.assert_allclose(p.grad.cpu().numpy(), grads64[name], rtol=tolerance, atol=tolerance)


# ------------------------------------------------------------------------------------ JAX


@pytest.fixture(scope="module")
def jax():
    jax = require("jax")
    jax.config.update("jax_enable_x64", True)
    return jax


def _jax_params(jax, values, dtype="float64"):
    return {n: jax.numpy.asarray(v, dtype=dtype) for n, v in values.items()}


def jax_loss(jax, spec, params, X, Y, penalty):
    """The same network and loss written directly in JAX (examples as rows)."""
    jnp, nn = jax.numpy, jax.nn
    hidden = {"sigmoid": nn.sigmoid, "tanh": jnp.tanh, "relu": nn.relu, "identity": lambda z: z,
              "leaky_relu": lambda z: nn.leaky_relu(z, 0.01), "softplus": nn.softplus, "silu": nn.silu}
    a = X
    for k in range(1, spec.depth + 1):
        z = a @ params[f"W{k}"].T + params[f"b{k}"]
        name = spec.activation(k).name
        a = nn.softmax(z, axis=1) if name == "softmax" else hidden[name](z)
    if spec.loss == "half_sse":
        per_example = 0.5 * ((a - Y) ** 2).sum(axis=1)
    elif spec.loss == "mse":
        per_example = ((a - Y) ** 2).mean(axis=1)
    elif spec.loss == "bce":
        per_example = -(Y * jnp.log(a) + (1 - Y) * jnp.log(1 - a)).sum(axis=1)
    else:
        per_example = -(Y * jnp.log(a)).sum(axis=1)
    loss = per_example.mean() if spec.reduction == "mean" else per_example.sum()
    if penalty is not None:
        loss = loss + penalty / 2 * sum((params[f"W{k}"] ** 2).sum() for k in range(1, spec.depth + 1))
    return loss


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_jax_check_grads_and_equality_with_jax_grad(jax, case, layout):
    from jax.test_util import check_grads

    spec = _spec(case, layout, batch=5)
    penalty = PENALTY if spec.l2 else None
    module = _build(spec, "jax").module
    values, X, Y = random_problem(spec, np.random.default_rng(21), scale=0.6)
    params = _jax_params(jax, values)
    X, Y = jax.numpy.asarray(X), jax.numpy.asarray(Y)
    check_grads(lambda p: module.loss(p, X, Y), (params,), order=1, modes=["rev"], eps=1e-6, atol=1e-7, rtol=1e-6)
    mine = jax.grad(module.loss)(params, X, Y)
    rows = (X, Y) if layout == "rows" else (X.T, Y.T)
    theirs = jax.grad(lambda p: jax_loss(jax, spec, p, *rows, penalty))(params)
    assert float(module.loss(params, X, Y)) == pytest.approx(float(jax_loss(jax, spec, params, *rows, penalty)), rel=1e-12)
    for name in params:
        np.testing.assert_allclose(np.asarray(mine[name]), np.asarray(theirs[name]), rtol=1e-10, atol=1e-13, err_msg=name)


def test_jax_loss_composes_with_jit_vmap_and_grad(jax):
    jnp = jax.numpy
    spec = _spec(dict(widths=(4, 6, 3), hidden="tanh", output="softmax", loss="cross_entropy"), batch=5)
    module = _build(spec, "jax").module
    values, X, Y = random_problem(spec, np.random.default_rng(3), scale=0.6)
    params, X, Y = _jax_params(jax, values), jnp.asarray(X), jnp.asarray(Y)
    eager = jax.grad(module.loss)(params, X, Y)
    jitted = jax.jit(jax.grad(module.loss))(params, X, Y)
    # per-example gradients: vmap over the examples, each a batch of one
    per_example = jax.vmap(jax.grad(module.loss), in_axes=(None, 0, 0))(params, X[:, None, :], Y[:, None, :])
    reference = jax.grad(lambda p: jax_loss(jax, spec, p, X, Y, None))(params)
    for name in params:
        np.testing.assert_allclose(np.asarray(jitted[name]), np.asarray(eager[name]), rtol=1e-13, atol=1e-15)
        assert per_example[name].shape == (5,) + params[name].shape
        np.testing.assert_allclose(np.asarray(per_example[name].mean(0)), np.asarray(reference[name]), rtol=1e-10,
                                   atol=1e-13, err_msg=name)
    # an ensemble: vmap over stacked parameter sets
    stacked = {n: jnp.stack([v, 2 * v]) for n, v in params.items()}
    losses = jax.vmap(module.loss, in_axes=(0, None, None))(stacked, X, Y)
    assert losses.shape == (2,) and float(losses[0]) == pytest.approx(float(module.loss(params, X, Y)), rel=1e-13)
    # the cotangent of X is not a derived quantity: NaN, never a plausible number
    assert bool(jnp.isnan(jax.grad(module.loss, argnums=1)(params, X, Y)).all())


def test_jax_train_step_and_loss_and_grads_agree_with_the_numpy_kernel(jax):
    spec = _spec(CASES[2], batch=6)
    module = _build(spec, "jax").module
    values, X, Y = random_problem(spec, np.random.default_rng(6))
    J0, grads0, output0 = _numpy_reference(spec, values, X, Y)
    params = _jax_params(jax, values)
    J, grads = module.loss_and_grads(params, X, Y)
    assert float(J) == pytest.approx(J0, rel=1e-12)
    for name in grads0:
        np.testing.assert_allclose(np.asarray(grads[name]), grads0[name], rtol=1e-11, atol=1e-14, err_msg=name)
    np.testing.assert_allclose(np.asarray(module.forward(params, X)), output0, rtol=1e-12)
    stepped = module.train_step(params, X, Y, 0.05)
    for name in values:
        np.testing.assert_allclose(np.asarray(stepped[name]), values[name] - 0.05 * grads0[name], rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("logit", [1000.0, -1000.0])
@pytest.mark.parametrize("case", EXTREME, ids=case_id)
def test_jax_float32_stays_finite_for_extreme_logits(jax, case, logit):
    spec = _spec(case, batch=4)
    module = _build(spec, "jax", "float32").module
    values, X, Y, J64, grads64 = _extreme_problem(spec, logit)
    params = _jax_params(jax, values, "float32")
    X32, Y32 = jax.numpy.asarray(X, "float32"), jax.numpy.asarray(Y, "float32")
    J, grads = jax.value_and_grad(module.loss)(params, X32, Y32)
    assert np.isfinite(float(J)) and float(J) == pytest.approx(J64, rel=1e-5)
    for name, g in grads.items():
        assert g.dtype == np.float32 and bool(np.isfinite(np.asarray(g)).all()), name
        np.testing.assert_allclose(np.asarray(g), grads64[name], rtol=1e-4, atol=1e-5, err_msg=name)


# ------------------------------------------------------------------------- the exported files


@pytest.mark.parametrize("target", ["torch", "jax"])
def test_exported_module_imports_neither_sympy_nor_symbackprop(tmp_path, target):
    engine = require(target)
    path = tmp_path / "proven.py"
    assert main(["export", "--widths", "4,5,3", "--hidden", "tanh", "--output-activation", "softmax",
                 "--loss", "cross_entropy", "--target", target, "-o", str(path)]) == 0
    source = path.read_text(encoding="utf-8")
    tree = ast.parse(source)
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imported == {"numpy", target}
    docstring = ast.get_docstring(tree)
    assert {"PyTorch": target == "torch", "JAX": target == "jax"}[docstring.split()[0]]
    assert "D1 = " in docstring and "GW2 = " in docstring and "overall: every statement proved" in docstring
    # SymPy blocked: importing it fails, so the module (and the engine) must not need it
    use = {"torch": "import torch; p = {k: v.requires_grad_() for k, v in proven.init_params(0).items()}; "
                    "X = torch.ones(2, 4, dtype=torch.float64); Y = torch.eye(3, dtype=torch.float64)[:2]; "
                    "proven.loss(p, X, Y).backward(); g = p['W1'].grad",
           "jax": "import jax; jax.config.update('jax_enable_x64', True); p = proven.init_params(0); "
                  "import jax.numpy as jnp; X = jnp.ones((2, 4)); Y = jnp.eye(3)[:2]; "
                  "g = jax.jit(jax.grad(proven.loss))(p, X, Y)['W1']"}[target]
    check = ("import sys; sys.modules['sympy'] = None; sys.path.insert(0, sys.argv[1]); import proven; "
             "assert not any(m.split('.')[0] in ('symbackprop', 'mpmath') for m in sys.modules), sorted(sys.modules); "
             f"{use}; print(tuple(g.shape), str(g.dtype))")
    run = subprocess.run([sys.executable, "-I", "-c", check, str(tmp_path)], capture_output=True, text=True,
                         timeout=120, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["(5,", "4)", "torch.float64" if target == "torch" else "float64"]
    del engine


def test_export_target_needs_no_engine_and_names_it(tmp_path, capsys):
    path = tmp_path / "k.py"
    assert main(["export", "--widths", "3,2", "--output-activation", "sigmoid", "--target", "jax", "-o", str(path)]) == 0
    assert "wrote" in capsys.readouterr().out and "jax.custom_vjp" in path.read_text(encoding="utf-8")
    assert main(["export", "--widths", "3,2", "--target", "tensorflow", "-o", str(path)]) == 2
    assert "--target" in capsys.readouterr().err


@pytest.mark.parametrize("target", ["torch", "jax"])
def test_train_with_an_engine_target_prints_the_same_table(target, capsys):
    require(target)
    require("sklearn")
    assert main(["train", "--widths", "64,32,10", "--data", "digits", "--epochs", "2", "--target", target]) == 0
    engine_lines = capsys.readouterr().out.splitlines()
    assert main(["train", "--widths", "64,32,10", "--data", "digits", "--epochs", "2"]) == 0
    numpy_lines = capsys.readouterr().out.splitlines()
    assert engine_lines[0].endswith(f"float64 ({ {'torch': 'PyTorch', 'jax': 'JAX'}[target]} kernel built in "
                                    f"{engine_lines[0].rsplit(' in ', 1)[1]}")
    assert engine_lines[1] == numpy_lines[1]
    for mine, theirs in zip(engine_lines[2:], numpy_lines[2:]):  # the same losses and accuracies
        assert mine.split()[:5] == theirs.split()[:5]


def test_train_target_without_its_engine_is_a_one_line_error(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "torch", None)
    assert main(["train", "--widths", "2,3,2", "--data", "digits", "--target", "torch"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pip install 'symbackprop[torch]'" in err
