"""The LaTeX reader on the constructs behind seed claims that were found but read otherwise than
the hand transcriptions: one test per construct, with the exact reading, the note of the guess and
a malformed case located."""
import pytest

from symbackprop.derivation.tex import TexError, translate

SYMBOLS = {"W": "weight", "b": "bias", "z": "preactivation", "a": "activation", "t": "target", "C": "loss",
           "sigma": "activation_function"}


def links(tex):
    return [(link.lhs, link.rhs, link.notes) for link in translate(tex, SYMBOLS)]


def test_a_vector_times_the_derivative_of_an_affine_vector_by_its_matrix_is_the_outer_product():
    contraction = ("read (a[2] - t) ∘ sigma'(z[2]) times jacobian({u}, W[2]) (a vector times the derivative of "
                   "a vector by a matrix) as the contraction ((a[2] - t) ∘ sigma'(z[2])) @ (a[1]).T")
    tex = r"\frac{\partial C}{\partial W^2} = (a^2-t) \circ \sigma'(z^2) \frac{\partial W^2 a^1 + b^2}{\partial W^2}"
    ((lhs, rhs, notes),) = links(tex)
    assert (lhs, rhs) == ("grad(C, W[2])", "((a[2] - t) ∘ sigma'(z[2])) @ (a[1]).T")
    assert notes[-1] == contraction.format(u="W[2] @ a[1] + b[2]")
    # z² by the network's forward definition z^l = W^l a^{l-1} + b^l: the guess is named
    tex = r"\frac{\partial C}{\partial W^2} = (a^2-t) \circ \sigma'(z^2) \frac{\partial z^2}{\partial W^2}"
    ((lhs, rhs, notes),) = links(tex)
    assert (lhs, rhs) == ("grad(C, W[2])", "((a[2] - t) ∘ sigma'(z[2])) @ (a[1]).T")
    assert notes[-1] == contraction.format(u="z[2]") + \
        ", z[2] being W[2] @ a[1] + its bias by the network's forward definition"


def test_the_contraction_is_not_read_where_the_vector_is_not_affine_in_that_matrix():
    # z² depends on W¹ through a¹ (a 3-tensor contraction the claim language cannot write): kept
    tex = r"\frac{\partial C}{\partial W^1} = (a^2-t) \circ \sigma'(z^2) \frac{\partial z^2}{\partial W^1}"
    assert links(tex)[0][1] == "(a[2] - t) ∘ sigma'(z[2]) @ jacobian(z[2], W[1])"
    tex = r"\frac{\partial C}{\partial W^1} = (a^2-t) \frac{\partial a^2}{\partial W^1}"
    assert links(tex)[0][1] == "(a[2] - t) @ jacobian(a[2], W[1])"
    # the added term holds the matrix too: not affine with coefficient a¹
    tex = r"\frac{\partial C}{\partial W^2} = (a^2-t) \frac{\partial W^2 a^1 + W^2 b^2}{\partial W^2}"
    assert "jacobian(" in links(tex)[0][1]


def test_a_malformed_derivative_in_the_contraction_is_located():
    tex = r"\frac{\partial C}{\partial W^2} = (a^2-t) \frac{\partial W^2 a^1 + }{\partial W^2}"
    with pytest.raises(TexError) as info:
        translate(tex, SYMBOLS)
    message = str(info.value)
    assert "\n" not in message and "column" in message, message


def test_a_per_layer_delta_with_two_entry_letters_and_no_layer_is_the_kronecker_delta():
    symbols = {**SYMBOLS, "L": "depth"}
    tex = r"\frac{\partial z_k^L}{\partial b^L_j} = \delta_{jk}"
    ((lhs, rhs, notes),) = [(k.lhs, k.rhs, k.notes) for k in translate(tex, symbols, ["delta[0]"])]
    assert (lhs, rhs) == ("grad(z[L][k], b[L][j])", "(j == k)")
    assert notes == ("read δ_(j,k) as the Kronecker delta (j == k): δ is per layer but δ_{jk} has no layer",)
    # a layer given (δ^l_{jk}), a letter that names a quantity (the depth L), or letters the formula
    # uses nowhere else (δ_{ij} may pack a layer and an entry): not a Kronecker delta
    assert translate(r"x = \delta_{jk}", symbols, ["delta[0]"])[0].rhs == "delta[j, k]"
    assert translate(r"x = \delta_{jk}^l", symbols, ["delta[0]"])[0].rhs == "delta[l][j, k]"
    assert "==" not in translate(r"x = \delta_{Lk}", symbols, ["delta[0]"])[0].rhs
    with pytest.raises(TexError) as info:
        translate(r"x = \delta_{jk", symbols, ["delta[0]"])
    assert "\n" not in str(info.value) and "column" in str(info.value)



def test_a_column_times_the_jacobian_of_two_vectors_is_read_as_the_row_times_it_transposed():
    tex = r"\frac{\partial C}{\partial b^2} = (a^2-t) \circ \sigma'(z^2) \frac{\partial W^2 a^1 + b^2}{\partial b^2}"
    ((lhs, rhs, notes),) = links(tex)
    assert (lhs, rhs) == ("grad(C, b[2])", "jacobian(W[2] @ a[1] + b[2], b[2]).T @ ((a[2] - t) ∘ sigma'(z[2]))")
    assert notes[-1] == ("read the column (a[2] - t) ∘ sigma'(z[2]) times jacobian(W[2] @ a[1] + b[2], b[2]) as "
                         "jacobian(W[2] @ a[1] + b[2], b[2]).T @ ((a[2] - t) ∘ sigma'(z[2])): the column as a row "
                         "(vᵀ ∂u/∂b), the result as a column")
    # a matrix times the Jacobian is the matrix product, as printed
    assert links(r"x = W^2 \frac{\partial a^1}{\partial z^1}")[0][1] == "W[2] @ jacobian(a[1], z[1])"
    with pytest.raises(TexError) as info:
        translate(r"\frac{\partial C}{\partial b^2} = (a^2-t) \frac{\partial a^2}{\partial z^2", SYMBOLS)
    assert "\n" not in str(info.value) and "column" in str(info.value)


def test_a_layer_at_example_k_outside_a_sum_over_the_examples_is_refused_not_multiplied():
    symbols = {**SYMBOLS, "x": "input", "p": "output", "L": "depth", "N": "batch"}
    with pytest.raises(TexError) as info:
        translate(r"p_k = a_L(x_k)", symbols)
    assert str(info.value).startswith("cannot read a[L](x_k), the value at example k, outside a sum over the "
                                      "examples")
    assert str(info.value).endswith("column 10")
    # inside the sum over k it is the example's column; the bare input is every layer's argument
    ((_, rhs, notes),) = [(k.lhs, k.rhs, k.notes) for k in translate(r"C = \sum_{k=1}^N a_L(x_k)", symbols)]
    assert rhs == "sum(a[L][:, k], k in 1..N)" and "read a[L](x_k) as a[L] at example k" in notes
    assert translate(r"C = a^L(x)", symbols)[0].rhs == "a[L]"
