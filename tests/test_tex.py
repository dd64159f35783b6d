"""The LaTeX reader: one test per construct, and located one-line errors."""
import pytest

from symbackprop.derivation.tex import TexError, translate

SYMBOLS = {"W": "weight", "b": "bias", "z": "preactivation", "a": "activation", "t": "target",
           "C": "loss", "sigma": "activation_function"}
DEFINED = ["delta[2]", "delta[1]"]


def read(tex):
    links = translate(tex, SYMBOLS, DEFINED)
    return [(link.lhs, link.rhs) for link in links]


def test_layer_superscript_and_function_call():
    assert read(r"a^l = \sigma(W^l a^{l-1} + b^l)") == [("a[l]", "sigma(W[l] @ a[l - 1] + b[l])")]


def test_partial_fraction_of_a_loss_is_a_gradient():
    assert read(r"\frac{\partial C}{\partial W^2} = 0")[0][0] == "grad(C, W[2])"


def test_partial_fraction_of_a_vector_is_a_jacobian_with_a_note():
    (link,) = translate(r"\frac{\partial a^2}{\partial z^2} = 0", SYMBOLS, DEFINED)
    assert link.lhs == "jacobian(a[2], z[2])" and link.notes


def test_transpose_odot_and_juxtaposition():
    assert read(r"x = (a^2 - t) \odot \sigma'(z^2) (a^1)^T") == [
        ("x", "(a[2] - t) ∘ sigma'(z[2]) @ (a[1]).T")]
    assert read(r"x = W^\top a") == [("x", "W.T @ a")]


def test_delta_circ_and_derivative():
    assert read(r"\delta^1 = (W^2)^T \delta^2 \circ \sigma'(z^1)") == [
        ("delta[1]", "(W[2]).T @ delta[2] ∘ sigma'(z[1])")]


def test_power_when_not_per_layer_and_scalar_product():
    assert read(r"y = \frac{1}{2} x^2") == [("y", "1 / 2 * x ** 2")]


def test_chain_gives_one_link_per_equals():
    links = translate(r"C = a + b = b + a", SYMBOLS, DEFINED)
    assert [(l.lhs, l.rhs) for l in links] == [("C", "a + b"), ("C", "b + a")]
    assert links[0].end <= links[1].start or links[0].end < links[1].end


@pytest.mark.parametrize("tex, column", [(r"x = \foo", 5), (r"x = (a", 7), (r"x + y", 6)])
def test_errors_are_one_line_with_a_column(tex, column):
    with pytest.raises(TexError) as info:
        translate(tex, SYMBOLS, DEFINED)
    assert "\n" not in str(info.value) and str(info.value).endswith(f"column {column}")


def test_tex_on_a_claim_becomes_one_claim_per_link(tmp_path):
    from symbackprop.derivation.loader import load
    path = tmp_path / "d.toml"
    path.write_text('[network]\nwidths = [3, 4, 2]\nhidden = "sigmoid"\noutput = "sigmoid"\n'
                    'loss = "half_sse"\nbatch = 1\n[symbols]\nW = "weight"\nb = "bias"\n'
                    'z = "preactivation"\na = "activation"\n'
                    '[[claim]]\nid = "F"\ntex = \'z^l = W^l a^{l-1} + b^l = b^l + W^l a^{l-1}\'\n'
                    'for = "l in 1..2"\n')
    d = load(path)
    assert [(c.id, c.lhs, c.rhs) for c in d.claims] == [
        ("Fa", "z[l]", "W[l] @ a[l - 1] + b[l]"), ("Fb", "z[l]", "b[l] + W[l] @ a[l - 1]")]
    assert not d.errors


def test_unreadable_tex_makes_the_claim_ill_formed_with_the_column(tmp_path):
    from symbackprop.derivation.loader import load
    path = tmp_path / "d.toml"
    path.write_text('[network]\nwidths = [3, 4, 2]\nhidden = "sigmoid"\noutput = "sigmoid"\n'
                    'loss = "half_sse"\nbatch = 1\n[[claim]]\nid = "E"\ntex = \'x = \\foo\'\n')
    d = load(path)
    assert d.errors == [f"{path}: claim E: tex: unknown macro \\foo at column 5"]
    assert d.claims[0].error == "tex: unknown macro \\foo at column 5"
