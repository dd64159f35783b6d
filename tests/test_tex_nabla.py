"""The LaTeX reader on lecture-note notation: ∇ without a function or a variable below, sums
without limits, trailing quantifiers, subscripts that pack a layer and an entry."""
import pytest

from symbackprop.derivation.tex import TexError, translate

SYMBOLS = {"W": "weight", "b": "bias", "a": "preactivation", "h": "activation", "A": "preactivation",
           "H": "activation", "Lθ": "loss", "L": "depth", "g": "hidden_activation", "e": "onehot",
           "ell": "label", "ŷ": "output", "m": "batch", "n": "width"}
NAMES = {r"\mathcal{L}(\theta)": "Lθ", r"\hat{y}": "ŷ", r"\ell": "ell"}


def read(tex, symbols=SYMBOLS):
    return [(link.lhs, link.rhs, link.notes) for link in translate(tex, symbols, [], NAMES)]


def test_nabla_of_a_variable_alone_is_the_loss_gradient_with_a_note():
    assert read(r"\nabla W_k = \nabla A_k") == [("grad(Lθ, W[k])", "grad(Lθ, A[k])", (
        "read W_k as layer k of W", "read ∇W[k] as the gradient of the loss Lθ by W[k]",
        "read A_k as layer k of A", "read ∇A[k] as the gradient of the loss Lθ by A[k]"))]


def test_nabla_with_a_variable_below_and_no_function_is_the_loss_gradient():
    ((lhs, rhs, notes),) = read(r"\nabla b_k = \nabla_{a_k}")
    assert rhs == "grad(Lθ, a[k])"
    assert "read ∇_a[k] with no function after it as the gradient of the loss Lθ by a[k]" in notes
    ((_, rhs, _),) = read(r"x = \nabla_{a_k} \mathcal{L}(\theta)")
    assert rhs == "grad(Lθ, a[k])"


@pytest.mark.parametrize("tex, symbols, message", [
    (r"x = \nabla W_k", {"W": "weight"}, r"∇W\[k\] names no function, and no name is mapped to the loss "
                                         "in \\[symbols\\] at column 5"),
    (r"x = \nabla", SYMBOLS, "nabla needs a variable, as in .* at column 5"),
    (r"x = \nabla \mathcal{L}(\theta)", SYMBOLS, "needs the variable below"),
])
def test_nabla_without_a_loss_or_a_variable_is_an_error_with_the_column(tex, symbols, message):
    with pytest.raises(TexError, match=message):
        translate(tex, symbols, [], NAMES)


def test_cdot_between_non_scalars_is_the_matrix_product_with_a_note():
    ((_, rhs, notes),) = read(r"x = W_k^T \cdot A_k")
    assert rhs == "W[k].T @ A[k]"
    assert r"read \cdot between W[k].T and A[k] as the matrix product" in notes
    ((_, rhs, notes),) = read(r"x = 2 \cdot A_k")
    assert rhs == "2 * A[k]" and not any("product" in n for n in notes)
    ((_, rhs, notes),) = read(r"x = A_k \times A_k")
    assert rhs == "A[k] * A[k]" and any("elementwise" in n for n in notes)
