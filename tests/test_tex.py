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


NET = ('[network]\nwidths = [3, 4, 2]\nhidden = "sigmoid"\noutput = "sigmoid"\nloss = "half_sse"\nbatch = 1\n'
       '[symbols]\nW = "weight"\nb = "bias"\nz = "preactivation"\na = "activation"\nt = "target"\n'
       'C = "loss"\nsigma = "activation_function"\nL = "depth"\nn = "width"\n')


def load_text(tmp_path, body):
    from symbackprop.derivation.loader import load
    path = tmp_path / "d.toml"
    path.write_text(NET + body)
    return load(path)


def test_tex_as_a_define_value_alone_or_with_its_name(tmp_path):
    d = load_text(tmp_path, r"""[define]
"delta[2]" = { tex = '''(a^2 - t) \odot \sigma'(z^2)''' }
"delta[l]" = { tex = '''\delta^l = (W^{l+1})^T \delta^{l+1} \circ \sigma'(z^l)''', for = "l in 1..1" }
[[claim]]
id = "D"
lhs = "grad(C, z[1])"
rhs = "delta[1]"
""")
    assert not d.errors
    assert [df.text for df in d.definitions] == [
        "(a[2] - t) ∘ sigma'(z[2])", "(W[l + 1]).T @ delta[l + 1] ∘ sigma'(z[l])"]


def test_unreadable_tex_in_a_define_is_an_error_with_the_column(tmp_path):
    d = load_text(tmp_path, r"""[define]
"E" = { tex = 'a^2 - \foo' }
""")
    assert d.errors == [f"{tmp_path / 'd.toml'}: [define] E: tex: unknown macro \\foo at column 7"]


def test_sum_with_limits_is_an_index_sum_over_the_following_product():
    from symbackprop.derivation.language import parse
    ((lhs, rhs),) = read(r"C = \frac{1}{m} \sum_{i=1}^{m} (a^2_i - t_i)^2 + 1")
    assert rhs == "1 / m * sum((a[2][i] - t[i]) ** 2, i in 1..m) + 1"
    parse(rhs)  # the claim language accepts it
    assert read(r"x = \sum_{k=1}^{m} W^2_{jk} a^1_k + m")[0][1] == "sum(W[2][j, k] * a[1][k], k in 1..m) + m"
    with pytest.raises(TexError, match="a sum needs its limits"):
        translate(r"x = \sum_{i=1} a_i", SYMBOLS, DEFINED)


@pytest.mark.parametrize("tex, rhs, note", [
    (r"x = W^{(l)} a^{(l-1)}", "W[l] @ a[l - 1]", "read W^(l) as layer l of W"),
    (r"x = W_l a_{l-1}", "W[l] @ a[l - 1]", "read W_l as layer l of W"),
    (r"x = w^l_{jk}", "W[l][j, k]", "read w with layer l and entry [j, k] as W[l][j, k]"),
    (r"x = w_{jk}^{l}", "W[l][j, k]", "read the subscript jk of w as the entry [j, k]"),
    (r"x = W^2_{j,k}", "W[2][j, k]", None),
])
def test_layer_scripts_and_entries_each_guess_with_a_note(tex, rhs, note):
    (link,) = translate(tex, SYMBOLS, DEFINED)
    assert link.rhs == rhs
    assert (note in link.notes) if note else not link.notes


def test_diag_is_a_call_and_sigma_follows_the_symbols_spelling():
    assert read(r"x = \operatorname{diag}(\sigma'(z^2)) W^2") == [("x", "diag(sigma'(z[2])) @ W[2]")]
    assert read(r"x = \operatorname{diag}\left(z^1\right)") == [("x", "diag(z[1])")]
    greek = {**{k: v for k, v in SYMBOLS.items() if k != "sigma"}, "σ": "activation_function"}
    links = translate(r"a^l = \sigma(z^l) \odot \sigma'(z^l)", greek, DEFINED)
    assert [(l.lhs, l.rhs) for l in links] == [("a[l]", "σ(z[l]) ∘ σ'(z[l])")]


def test_align_rows_are_links_with_line_and_column():
    tex = "\\begin{aligned}\n  z^l &= W^l a^{l-1} + b^l \\\\\n      &= b^l + W^l a^{l-1} \\\\\n  a^l &= \\sigma(z^l)\n\\end{aligned}"
    links = translate(tex, SYMBOLS, DEFINED)
    assert [(l.lhs, l.rhs, l.line, l.column) for l in links] == [
        ("z[l]", "W[l] @ a[l - 1] + b[l]", 2, 3), ("z[l]", "b[l] + W[l] @ a[l - 1]", 3, 8),
        ("a[l]", "sigma(z[l])", 4, 3)]
    with pytest.raises(TexError, match="line 3, column 16$"):
        translate(tex.replace("+ W^l", "+ \\foo"), SYMBOLS, DEFINED)
    with pytest.raises(TexError, match="no row is above it at line 1, column"):
        translate("\\begin{align}\n&= a\n\\end{align}".replace("\n&", "&"), SYMBOLS, DEFINED)


def test_shape_annotation_is_read_and_checked_on_the_network(tmp_path):
    (link,) = translate(r"\frac{\partial C}{\partial b^2} = [\,\delta^2\,]_{2\times 1}", SYMBOLS, DEFINED)
    assert (link.rhs, link.shape) == ("delta[2]", ("2", "1"))
    from symbackprop.derivation.check import Checker
    d = load_text(tmp_path, r"""[define]
"delta[2]" = "(a[2] - t) ∘ sigma'(z[2])"
[[claim]]
id = "Right"
tex = '\frac{\partial C}{\partial b^2} = [\,\delta^2\,]_{n_2\times 1}'
[[claim]]
id = "Wrong"
tex = '\frac{\partial C}{\partial b^2} = [\,\delta^2\,]_{1\times n_2}'
""")
    assert not d.errors and [c.shape for c in d.claims] == [("n[2]", "1"), ("1", "n[2]")]
    right, wrong = (Checker(d).check_claim(c).verdict for c in d.claims)
    assert right.status == "proved"
    assert wrong.status == "ill-formed"
    assert wrong.message.startswith("the right side is 2×1, but its shape annotation says 1×n[2] = 1×2")


@pytest.mark.parametrize("tex", [
    r"a^l = \sigma(W^l a^{l-1} + b^l)",
    r"\frac{\partial C}{\partial W^2} = \delta^2 (a^1)^T",
    r"\delta^1 = (W^2)^T \delta^2 \odot \sigma'(z^1)",
    r"C = \frac{1}{2} \sum_{i=1}^{n_2} (a^2_i - t_i)^2",
    r"x = w^2_{jk}",
    r"x = \operatorname{diag}(\sigma'(z^1)) W^2",
    r"\frac{\partial C}{\partial b^1} = \delta^1 = (W^2)^\top \delta^2 \circ \sigma'(z^1)",
    r"x = \frac{\partial}{\partial a^2} \left(\frac{1}{2} \sum_{i=1}^{n_2} (a^2_i - t_i)^2\right)",
    r"x = \|a^2 - t\|^2 + e^{z^1_1}",
])
def test_round_trip_through_the_project_printer(tmp_path, tex):
    """LaTeX → claim → the project's LaTeX printer → LaTeX reader: the same formula (the same
    syntax tree: the printer may add parentheses), and the claim text is a fixed point after that."""
    import ast
    from symbackprop.derivation.language import parse
    from symbackprop.latex.claims import formula_latex
    d = load_text(tmp_path, '[define]\n"delta[l]" = { expr = "W[l+1].T @ delta[l+1] ∘ sigma\'(z[l])", '
                            'for = "l in 1..1" }\n"delta[2]" = "(a[2] - t) ∘ sigma\'(z[2])"\n')
    symbols = {k: b.quantity for k, b in d.bindings.items()}
    defined = [df.name for df in d.definitions]

    def again(link):
        printed = f"{formula_latex(link.lhs, d)} = {formula_latex(link.rhs, d)}"
        (back,) = translate(printed, symbols, defined)
        return back

    for link in translate(tex, symbols, defined):
        back = again(link)
        for before, after in ((link.lhs, back.lhs), (link.rhs, back.rhs)):
            assert ast.dump(parse(before)) == ast.dump(parse(after)), (before, after)
        twice = again(back)
        assert (twice.lhs, twice.rhs) == (back.lhs, back.rhs)


def test_norms_exp_bold_names_and_closing_punctuation():
    assert read(r"C = \frac12\|a^2 - t\|^2") == [("C", "1 / 2 * norm(a[2] - t) ** 2")]
    assert read(r"C = \frac{1}{2}\left\| a^2 - t \right\|^2.") == [("C", "1 / 2 * norm(a[2] - t) ** 2")]
    (link,) = translate(r"x = e^{z^1}", SYMBOLS, DEFINED)
    assert (link.rhs, link.notes) == ("exp(z[1])", ("read e^z[1] as exp(z[1])",))
    assert read(r"x = \mathbf{W}^2 \boldsymbol{\delta}^2,") == [("x", "W[2] @ delta[2]")]
    rows = translate("\\begin{align*}\nz^1 &= W^1 a^0 + b^1 \\label{eq:z} \\nonumber \\\\\na^1 &= \\sigma(z^1).\n"
                     "\\end{align*}", SYMBOLS, DEFINED)
    assert [(l.lhs, l.rhs) for l in rows] == [("z[1]", "W[1] @ a[0] + b[1]"), ("a[1]", "sigma(z[1])")]
    with pytest.raises(TexError, match=r"a pmatrix written out entry by entry .* at column 5"):
        translate(r"x = \begin{pmatrix} a & b \end{pmatrix}", SYMBOLS, DEFINED)


def test_a_greek_macro_is_the_defined_unicode_name():
    assert translate(r"x = \delta^2", SYMBOLS, ["δ[2]"])[0].rhs == "δ[2]"


def test_nabla_ell_tanh_and_font_switches():
    assert read(r"\nabla_{W^2} C = \delta^2 (a^1)^T") == [("grad(C, W[2])", "delta[2] @ (a[1]).T")]
    assert read(r"x = \tanh(z^\ell) \cdotp {\bf a}^1 + \underline{b}^1") == [
        ("x", "tanh(z[ell]) @ a[1] + b[1]")]
    with pytest.raises(TexError, match="nabla C needs the variable below"):
        translate(r"x = \nabla C", SYMBOLS, DEFINED)


def test_a_dot_in_a_subscript_is_a_whole_row_or_column():
    (link,) = translate(r"x = W^2_{j,\cdot}", SYMBOLS, DEFINED)
    assert link.rhs == "W[2][j, :]" and any("whole row" in note for note in link.notes)
    assert [(l.rhs, l.notes) for l in translate(r"x = W^2_{:,k}", SYMBOLS, DEFINED)] == [("W[2][:, k]", ())]


def test_a_calligraphic_letter_is_the_symbol_of_that_name_if_mapped():
    (link,) = translate(r"\mathcal{C} = \frac12 \|a^2 - t\|^2", SYMBOLS, DEFINED)
    assert (link.lhs, link.notes) == ("C", (r"read \mathcal{C} as C",))
    with pytest.raises(TexError, match=r"\\mathcal\{L\} is read as the name L, which \[symbols\] does not map at column 1"):
        translate(r"\mathcal{L} = 0", SYMBOLS, DEFINED)


def test_the_derivative_operator_applies_to_the_factor_after_it():
    assert read(r"x = \frac{\partial}{\partial a^2} \left(\frac{1}{2} \sum_{i=1}^{2} (a^2_i - t_i)^2\right)") == [
        ("x", "grad(1 / 2 * sum((a[2][i] - t[i]) ** 2, i in 1..2), a[2])")]
    (link,) = translate(r"x = \frac{\partial}{\partial z^2} (W^2 a^1)", SYMBOLS, DEFINED)
    assert link.rhs == "jacobian(W[2] @ a[1], z[2])" and link.notes


def test_a_parenthesized_superscript_on_another_name_is_a_power_with_a_note():
    (link,) = translate(r"y = x^{(i)}", SYMBOLS, DEFINED)
    assert link.rhs == "x ** (i)" and link.notes == ("read x^(i) as a power: x is not a per-layer name",)


def test_underbrace_reads_its_formula_and_drops_its_label_with_a_note():
    (link,) = translate(r"\delta^2 = \underbrace{(a^2 - t)}_{\text{error}} \odot \sigma'(z^2)", SYMBOLS, DEFINED)
    assert link.rhs == "(a[2] - t) ∘ sigma'(z[2])" and link.notes == ("dropped the label of \\underbrace{(a[2] - t)}",)
