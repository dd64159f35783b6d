"""The input checks of a generated kernel: one function, ``_check_inputs``, that ``forward``,
``loss`` and ``loss_and_grads`` call first (``train_step`` does not: it is the hot loop, and
``train`` hands it only checked arrays).

A 1-D sample, examples in the wrong orientation, a batch of the wrong width, NaN or infinite data
would otherwise broadcast into a wrong answer or fail deep inside a ufunc; each is a ValueError
that names the problem.  The source below is pasted into the generated module as it stands
(it uses the module's ``np``, ``WIDTHS`` and ``LAYOUT``).

The PyTorch and JAX modules paste :data:`TENSOR_SOURCE`: the same checks of shapes (static under
``jax.jit``), without the NaN test, which would force a device synchronisation on every call.
"""

SOURCE = '''

def _check_inputs(function, X, Y=None):
    """ValueError naming the problem when X (and Y) cannot be a batch for this network."""
    rows = LAYOUT == "rows"
    for name, A, width in (("X", X, WIDTHS[0]), ("Y", Y, WIDTHS[-1])):
        if A is None:
            continue
        expected = f"m × {width}, examples as rows" if rows else f"{width} × m, examples as columns"
        if not isinstance(A, np.ndarray):
            raise ValueError(f"{function}: {name} must be a NumPy array ({expected}), not {type(A).__name__}")
        if A.ndim != 2:
            one = f"{name}[None, :]" if rows else f"{name}[:, None]"
            hint = f"; for one example pass {one}" if A.ndim == 1 and A.shape[0] == width else ""
            raise ValueError(f"{function}: {name} is {A.ndim}-D with shape {A.shape}; expected a 2-D batch "
                             f"({expected}){hint}")
        if A.dtype.kind not in "fiub":
            raise ValueError(f"{function}: {name} has dtype {A.dtype}; expected numbers")
        features = A.shape[1] if rows else A.shape[0]
        if features != width:
            other = A.shape[0] if rows else A.shape[1]
            hint = f" (it looks transposed: pass {name}.T)" if other == width else ""
            raise ValueError(f"{function}: {name} has shape {A.shape}; expected {expected}{hint}")
        if A.size == 0:
            raise ValueError(f"{function}: {name} is an empty batch (shape {A.shape})")
        if not np.isfinite(A).all():
            bad = tuple(int(i) for i in np.argwhere(~np.isfinite(A))[0])
            raise ValueError(f"{function}: {name} contains NaN or infinity (first at {name}[{bad[0]}, {bad[1]}])")
    if Y is not None and X.shape[0 if rows else 1] != Y.shape[0 if rows else 1]:
        raise ValueError(f"{function}: X holds {X.shape[0 if rows else 1]} examples but Y holds "
                         f"{Y.shape[0 if rows else 1]}")
'''

TENSOR_SOURCE = '''

def _check_inputs(function, X, Y=None):
    """ValueError naming the problem when X (and Y) cannot be a batch for this network (the
    message is built only then: these checks run on every call)."""
    axis = 1 if LAYOUT == "rows" else 0
    for name, A, width in (("X", X, WIDTHS[0]), ("Y", Y, WIDTHS[-1])):
        if A is None:
            continue
        shape = getattr(A, "shape", None)
        if shape is None or len(shape) != 2 or shape[axis] != width or not shape[0] or not shape[1]:
            _input_error(function, name, A, width)
    if Y is not None and X.shape[1 - axis] != Y.shape[1 - axis]:
        raise ValueError(f"{function}: X holds {X.shape[1 - axis]} examples but Y holds {Y.shape[1 - axis]}")


def _input_error(function, name, A, width):
    rows = LAYOUT == "rows"
    expected = f"m × {width}, examples as rows" if rows else f"{width} × m, examples as columns"
    shape = getattr(A, "shape", None)
    if shape is None:
        raise ValueError(f"{function}: {name} must be ARRAY ({expected}), not {type(A).__name__}")
    if len(shape) != 2:
        one = f"{name}[None, :]" if rows else f"{name}[:, None]"
        hint = f"; for one example pass {one}" if len(shape) == 1 and shape[0] == width else ""
        raise ValueError(f"{function}: {name} is {len(shape)}-D with shape {tuple(shape)}; expected a 2-D "
                         f"batch ({expected}){hint}")
    features = shape[1] if rows else shape[0]
    if features != width:
        other = shape[0] if rows else shape[1]
        hint = f" (it looks transposed: pass {name}.T)" if other == width else ""
        raise ValueError(f"{function}: {name} has shape {tuple(shape)}; expected {expected}{hint}")
    raise ValueError(f"{function}: {name} is an empty batch (shape {tuple(shape)})")
'''
