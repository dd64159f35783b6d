"""The LaTeX reader on lecture-note notation: ∇ without a function or a variable below, sums
without limits, trailing quantifiers, subscripts that pack a layer and an entry."""
import pytest

from symbackprop.derivation.tex import TexError, translate

SYMBOLS = {"W": "weight", "b": "bias", "a": "preactivation", "h": "activation", "A": "preactivation",
           "H": "activation", "Lθ": "loss", "L": "depth", "g": "hidden_activation", "e": "onehot",
           "ell": "label", "ŷ": "output", "m": "batch", "n": "width"}
NAMES = {r"\mathcal{L}(\theta)": "Lθ", r"\hat{y}": "ŷ", r"\hat{Y}": "Ŷ", r"\ell": "ell"}


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
    assert any(n.startswith(r"read \cdot between W[k].T and A[k] as the matrix product") for n in notes)
    ((_, rhs, notes),) = read(r"x = 2 \cdot A_k")
    assert rhs == "2 * A[k]" and not any("product" in n for n in notes)
    ((_, rhs, notes),) = read(r"x = A_k \times A_k")
    assert rhs == "A[k] * A[k]" and any("elementwise" in n for n in notes)


@pytest.mark.parametrize("tex, rhs, note", [
    (r"x = W_{kij}", "W[k][i, j]", "read the subscript kij of W as layer k, entry [i, j]"),
    (r"x = W_{111}", "W[1][1, 1]", "read the subscript 111 of W as layer 1, entry [1, 1]"),
    (r"x = a_{Li}", "a[L][i]", "read the subscript Li of a as layer L, entry [i]"),
    (r"x = a_{L\ell}", "a[L][ell]", "read the subscript Lell of a as layer L, entry [ell]"),
    (r"x = h_{k-1,j}", "h[k - 1][j]", "read the subscript k - 1, j of h as layer k - 1, entry [j]"),
    (r"x = W_{i+1,m,j}", "W[i + 1][m, j]", "read the subscript i + 1, m, j of W as layer i + 1, entry [m, j]"),
    (r"x = (W_{i+1,\cdot,j})^T", "(W[i + 1][:, j]).T", "read the subscript i + 1, :, j of W as layer i + 1, entry [:, j]"),
    (r"x = a_{i+1}", "a[i + 1]", "read a_i + 1 as layer i + 1 of a"),
    (r"x = \underline{e}_\ell", "e", "read e_ell as the one-hot vector e of the label ell"),
])
def test_a_subscript_packing_layer_and_entry_is_read_with_a_note(tex, rhs, note):
    ((_, got, notes),) = read(tex)
    assert got == rhs and note in notes


def test_packed_entries_are_scalars_so_they_multiply_with_a_star():
    ((lhs, rhs, notes),) = read(r"\frac{\partial \mathcal{L}(\theta)}{\partial a_{ij}} = "
                                r"\frac{\partial \mathcal{L}(\theta)}{\partial h_{ij}} g'(a_{ij})")
    assert (lhs, rhs) == ("grad(Lθ, a[i][j])", "grad(Lθ, h[i][j]) * g'(a[i][j])")
    ((lhs, rhs, notes),) = read(r"\frac{\partial a_{ki}}{\partial W_{kij}} = h_{k-1,j} \cdot 2")
    assert (lhs, rhs) == ("grad(a[k][i], W[k][i, j])", "h[k - 1][j] * 2")
    ((_, rhs, _),) = read(r"x = (W_{i+1,\cdot,j})^T \nabla_{a_{i+1}} \mathcal{L}(\theta)")
    assert rhs == "(W[i + 1][:, j]).T @ grad(Lθ, a[i + 1])"  # a column is not a scalar


def test_a_digit_run_on_a_name_not_per_layer_stays_a_number():
    ((_, rhs, notes),) = read(r"x = \hat{y}_{12}")
    assert rhs == "ŷ[12]" and not notes
    with pytest.raises(TexError, match="a second subscript at column 15"):
        translate(r"x = W_{ki}_{j}", SYMBOLS, [], NAMES)


def test_a_fraction_of_scalars_is_a_scalar_factor():
    ((_, rhs, _),) = read(r"\nabla A_L = \frac{1}{m} (\hat{Y} - E)", {**SYMBOLS, "Ŷ": "output", "E": "onehot"})
    assert rhs == "1 / m * (Ŷ - E)"


@pytest.mark.parametrize("tex, for_range", [
    (r"\nabla W_k = \nabla_{a_k} \cdot h_{k-1}^T \quad \forall k = 1(1)L", "k in 1..L"),
    (r"\nabla W_k = \nabla_{a_k} \cdot h_{k-1}^T \quad \forall k = 1(1)\overline{L-1}", "k in 1..L - 1"),
    (r"A_k = W_k H_{k-1} \quad \forall k = 1, 2, \dots, L", "k in 1..L"),
    (r"A_k = W_k H_{k-1}, \; \forall k = 1, \ldots, L-1.", "k in 1..L - 1"),
    (r"A_k = W_k H_{k-1} \quad \forall k \in \{1, 2, \dots, L\}", "k in 1..L"),
    (r"A_k = W_k H_{k-1} \quad \forall k = L-1, \dots, 1", "k in 1..L - 1"),  # counted down
])
def test_a_trailing_quantifier_is_the_links_range(tex, for_range):
    links = translate(tex, SYMBOLS, [], NAMES)
    assert [link.for_range for link in links] == [for_range]
    assert links[0].lhs in ("grad(Lθ, W[k])", "A[k]") and "forall" not in links[0].rhs


def test_every_link_of_a_quantified_chain_has_its_range():
    links = translate(r"\nabla a_k = \nabla h_k \odot g'(a_k) = W_{k+1}^T \cdot \nabla_{a_{k+1}} \odot g'(a_k)"
                      r" \quad \forall k = 1(1)\overline{L-1}", SYMBOLS, [], NAMES)
    assert [(link.rhs, link.for_range) for link in links] == [
        ("grad(Lθ, h[k]) ∘ g'(a[k])", "k in 1..L - 1"),
        ("W[k + 1].T @ grad(Lθ, a[k + 1]) ∘ g'(a[k])", "k in 1..L - 1")]


@pytest.mark.parametrize("tex, message", [
    (r"x = 1 \quad \forall k = 1", r"a quantifier is written \\forall k = 1\(1\)L or .* at column 13"),
    (r"x = 1 \quad \forall k = 1(2)L", "a quantifier's step must be 1 at column 27"),
    (r"x = 1 \quad \forall k", "a quantifier is written"),
    (r"x = 1 \quad \forall k \in \{1, \dots, L", r"expected '\\\}' closing the set of the quantifier at column 39"),
])
def test_a_malformed_quantifier_is_an_error_with_the_column(tex, message):
    with pytest.raises(TexError, match=message):
        translate(tex, SYMBOLS, [], NAMES)


NET = ('[network]\nwidths = [3, 4, 2]\nhidden = "sigmoid"\noutput = "softmax"\nloss = "cross_entropy"\n'
       'batch = 1\n[symbols]\nW = "weight"\nb = "bias"\na = "preactivation"\nh = "activation"\n'
       '"Lθ" = "loss"\nL = "depth"\n')


def test_a_claims_quantifier_becomes_its_for_unless_it_has_one(tmp_path):
    from symbackprop.derivation.loader import load
    path = tmp_path / "d.toml"
    path.write_text(NET + "[[claim]]\nid = \"S\"\ntex = '\\nabla b_k = \\nabla_{a_k} \\quad \\forall k = 1(1)L'\n"
                    "[[claim]]\nid = \"T\"\nfor = \"k in 2..L\"\n"
                    "tex = '\\nabla b_k = \\nabla_{a_k} \\quad \\forall k = 1(1)L'\n")
    d = load(path)
    assert not d.errors
    assert [(c.id, c.lhs, c.rhs, c.range) for c in d.claims] == [
        ("S", "grad(Lθ, b[k])", "grad(Lθ, a[k])", "k in 1..L"), ("T", "grad(Lθ, b[k])", "grad(Lθ, a[k])", "k in 2..L")]
    from symbackprop.derivation import verify
    report = verify(str(path))
    assert [r.verdict.status for r in report.results] == ["proved", "proved"]


def test_the_draft_keeps_a_trailing_quantifier_with_its_formula(tmp_path):
    from symbackprop.extract import draft
    doc = tmp_path / "notes.md"
    doc.write_text("Summary:\n\n- $\\nabla b_k = \\nabla_{a_k} \\quad \\forall k = 1(1)L$\n")
    text = draft(doc).toml
    assert "tex  = '\\nabla b_k = \\nabla_{a_k} \\quad \\forall k = 1(1)L'" in text


def test_a_sum_without_limits_runs_over_its_index_s_whole_range():
    ((lhs, rhs, notes),) = read(r"a_{ki} = b_{ki} + \sum_j W_{kij} h_{k-1,j}")
    assert (lhs, rhs) == ("a[k][i]", "b[k][i] + sum(W[k][i, j] * h[k - 1][j], j)")
    assert r"read \sum_j without limits as the sum over every j" in notes


def test_a_sum_up_to_a_letter_that_is_no_size_runs_over_the_whole_range():
    ((_, rhs, notes),) = read(r"x = \sum_{r=1}^k \frac{\partial \mathcal{L}(\theta)}{\partial a_{i+1,r}} W_{i+1,r,j}")
    assert rhs == "sum(grad(Lθ, a[i + 1][r]) * W[i + 1][r, j], r)"
    assert r"read \sum_{r=1}^{k} as the sum over every r: k is not a size [symbols] gives" in notes
    ((_, rhs, notes),) = read(r"x = \frac{1}{p} \sum_{r=1}^p a_{Lr}")  # p used elsewhere: kept
    assert rhs == "1 / p * sum(a[L][r], r in 1..p)"
    ((_, rhs, _),) = read(r"x = \sum_{r=1}^{L} a_{Lr}")  # L is a name
    assert rhs == "sum(a[L][r], r in 1..L)"


def test_a_summation_index_that_is_a_name_is_renamed_with_a_note():
    ((_, rhs, notes),) = read(r"x = \sum_{m=1}^{L} \frac{\partial \mathcal{L}(\theta)}{\partial a_{Lm}} + m")
    assert rhs == "sum(grad(Lθ, a[L][q]), q in 1..L) + m"  # the m after the sum is the batch size
    assert "read the summation index m as q: m is a name in [symbols]" in notes


@pytest.mark.parametrize("tex, message", [
    (r"x = \sum^{m} a_i", r"a sum needs its index, as in \\sum_\{i=1\}\^\{m\} or \\sum_i at column 5"),
    (r"x = \sum_{i}^{m} a_i", "a sum with an upper limit needs its lower one"),
    (r"x = \sum_{=1}^{m} a_i", "expected the index of the sum at column 11"),
])
def test_a_malformed_sum_is_an_error_with_the_column(tex, message):
    with pytest.raises(TexError, match=message):
        translate(tex, SYMBOLS, [], NAMES)


def test_the_claim_language_sums_a_bare_index_over_its_whole_range(tmp_path):
    from symbackprop.derivation import verify
    path = tmp_path / "d.toml"
    path.write_text(NET + '[[claim]]\nid = "P"\nlhs = "a[k][i]"\nrhs = "b[k][i] + sum(W[k][i, j] * h[k-1][j], j)"\n'
                    'for = "k in 1..L"\n[[claim]]\nid = "Q"\nlhs = "a[k][i]"\n'
                    'rhs = "b[k][i] + sum(2 * W[k][i, j] * h[k-1][j], j)"\nfor = "k in 1..L"\nexpect = "refuted"\n'
                    '[[claim]]\nid = "B"\nlhs = "a[1][i]"\nrhs = "sum(W[1][i, j] * h[0][j], L)"\n'
                    'expect = "ill-formed"\n')
    report = verify(str(path))
    assert [r.verdict.status for r in report.results] == ["proved", "refuted", "ill-formed"]
    assert "index j in sum(W[1][i, j] * h[0][j], L) is not bound" in report.results[2].verdict.message


def test_round_trip_of_lecture_note_constructs_through_the_project_printer(tmp_path):
    """LaTeX → claim → the project's printer → LaTeX reader: the same syntax tree."""
    import ast
    from symbackprop.derivation.language import parse
    from symbackprop.derivation.loader import load
    from symbackprop.latex.claims import formula_latex
    path = tmp_path / "d.toml"
    path.write_text(NET.replace('"Lθ" = "loss"', 'C = "loss"'))
    d = load(path)
    symbols = {k: b.quantity for k, b in d.bindings.items()}
    for tex in (r"a_{ki} = b_{ki} + \sum_j W_{kij} h_{k-1,j}",
                r"\nabla W_k = \nabla_{a_k} \cdot h_{k-1}^T",
                r"\frac{\partial C}{\partial h_{ij}} = (W_{i+1,\cdot,j})^T \nabla_{a_{i+1}} C",
                r"\frac{\partial C}{\partial W_{kij}} = \frac{\partial C}{\partial a_{ki}} h_{k-1,j}",
                r"\nabla a_k = \nabla h_k \odot [\dots, g'(a_{kr}), \dots] \quad \forall k = 1(1)\overline{L-1}",
                r"x = \frac{d}{d a_L} C"):
        for link in translate(tex, symbols):
            printed = f"{formula_latex(link.lhs, d)} = {formula_latex(link.rhs, d)}"
            (back,) = translate(printed, symbols)
            assert ast.dump(parse(back.lhs)) == ast.dump(parse(link.lhs)), printed
            assert ast.dump(parse(back.rhs)) == ast.dump(parse(link.rhs)), printed


def test_an_activation_function_subscripted_by_its_layer_is_the_function_with_a_note():
    ((lhs, rhs, notes),) = read(r"H_k = g_k(A_k) \quad \forall k = 1, 2, \dots, L-1")
    assert (lhs, rhs) == ("H[k]", "g(A[k])")
    assert "read g_k(…) as g(…): [symbols] gives one hidden activation for every layer" in notes
    with pytest.raises(TexError, match="expected '\\)' at column 14"):
        translate(r"H_k = g_k(A_k", SYMBOLS, [], NAMES)


@pytest.mark.parametrize("tex, kind", [
    (r"A_k = W_k H_{k-1} + b_k", "forward definition"),
    (r"\hat{Y} = \text{softmax}(A_L)", "forward definition"),
    (r"g'(z) = g(z)(1 - g(z))", "derivative"),
    (r"\sigma'(z) = \sigma(z)(1 - \sigma(z))", "derivative"),
    (r"n = 3", "other"),
])
def test_the_draft_classifies_batch_matrices_and_derivatives_of_functions(tex, kind):
    from symbackprop.extract import classify
    assert classify(tex) == kind


def test_leibniz_d_is_a_derivative_with_a_note_unless_d_is_a_name():
    ((_, rhs, notes),) = read(r"x = \frac{d \mathcal{L}(\theta)}{d a_L} + \frac{\mathrm{d}}{\mathrm{d} h_L} \mathcal{L}(\theta)")
    assert rhs == "grad(Lθ, a[L]) + grad(Lθ, h[L])"
    assert "read d…/d… as the derivative ∂…/∂…" in notes
    ((_, rhs, _),) = read(r"x = \frac{d_1}{d_2}", {**SYMBOLS, "d": "target"})
    assert rhs == "(d[1]) / (d[2])"
    ((_, rhs, _),) = read(r"x = \frac{d}{2}")
    assert rhs == "d / 2"
    with pytest.raises(TexError, match="a higher derivative d\\^n y/dx\\^n is not read at column 11"):
        translate(r"x = \frac{d^2 a_L}{d h_L^2}", SYMBOLS, [], NAMES)


def test_outputs_names_the_output_width_so_a_sum_up_to_it_is_read_literally(tmp_path):
    from symbackprop.derivation import verify
    symbols = {**SYMBOLS, "p": "output_width"}
    ((_, rhs, notes),) = read(r"x = \sum_{m=1}^p \frac{\partial \mathcal{L}(\theta)}{\partial a_{L,m}} W_{L,m,j}", symbols)
    assert rhs == "sum(grad(Lθ, a[L][q]) * W[L][q, j], q in 1..p)"
    path = tmp_path / "d.toml"
    path.write_text(NET + 'p = "output_width"\nn = "width"\n[[claim]]\nid = "H"\nlhs = "grad(Lθ, h[L-1][j])"\n'
                    'rhs = "sum(grad(Lθ, a[L][q]) * W[L][q, j], q in 1..p)"\n'
                    '[[claim]]\nid = "S"\nlhs = "grad(Lθ, a[L][p])"\nrhs = "grad(Lθ, a[L])[n[L]]"\n')
    assert [r.verdict.status for r in verify(str(path)).results] == ["proved", "proved"]


def test_the_generic_entry_of_a_vector_reads_with_packed_subscripts():
    ((_, rhs, notes),) = read(r"x = \nabla_{h_i} \mathcal{L}(\theta) \odot [\dots, g'(a_{ik}), \dots]")
    assert rhs == "grad(Lθ, h[i]) ∘ g'(a[i])"
    assert "read the subscript ik of a as layer i, entry [k]" in notes


def test_e_to_a_power_is_exp_even_where_e_names_the_one_hot_vector():
    ((_, rhs, notes),) = read(r"x = \frac{1}{1 + e^{-z}} - \underline{e}_\ell")
    assert rhs == "1 / (1 + exp(-z)) - e"
    assert "read e^-z as exp(-z): e is the one-hot vector, which has no power" in notes
    ((_, rhs, _),) = read(r"x = e^T")
    assert rhs == "e.T"


def test_a_quantifier_printed_before_a_display_applies_to_it_in_the_draft(tmp_path):
    import tomllib
    from symbackprop.extract import draft
    doc = tmp_path / "notes.md"
    doc.write_text("Now, $\\forall i = 1(1)\\overline{L-1}$, with $a_i$ given,\n\n"
                   "$$\\frac{\\partial C}{\\partial a_{ij}} = \\frac{\\partial C}{\\partial h_{ij}} g'(a_{ij})$$\n\n"
                   "$$\\therefore \\frac{\\partial C}{\\partial h_{ij}} = \\frac{\\partial C}{\\partial a_{ij}}$$\n\n"
                   "so $x_i = a_i$ and\n\n"
                   "$$\\frac{\\partial C}{\\partial b_{ki}} = \\frac{\\partial C}{\\partial a_{ki}}$$\n")
    claims = tomllib.loads(draft(doc).toml)["claim"]
    assert claims[0]["tex"].endswith(r"g'(a_{ij}) \quad \forall i = 1(1)\overline{L-1}")
    assert r"the quantifier \forall i = 1(1)\overline{L-1} printed before the display (line 1) applied to it" \
        in claims[0]["note"]
    assert claims[1]["tex"].endswith(r"\quad \forall i = 1(1)\overline{L-1}")  # ∴: a consequence, in its scope
    assert all("forall" not in c["tex"] for c in claims[2:])  # the inline x_i = a_i, then a display of its own
    (link,) = translate(claims[0]["tex"], {"a": "preactivation", "h": "activation", "C": "loss",
                                           "g": "hidden_activation", "L": "depth"})
    assert link.for_range == "i in 1..L - 1"


@pytest.mark.parametrize("tex, rhs", [
    (r"x = W_{12}", "W[12]"),  # two digits on a weight: layer 12, not an entry
    (r"x = a_{10}", "a[10]"),  # an entry index is never 0
    (r"x = a_{21}", "a[2][1]"),
    (r"x = a_{k1}", "a[k][1]"),
])
def test_a_run_of_digits_is_a_layer_and_an_entry_only_when_it_has_their_count(tex, rhs):
    ((_, got, _),) = read(tex)
    assert got == rhs


@pytest.mark.parametrize("tex", [r"x = \nabla g(x)", r"x = \nabla q(x)", r"x = \nabla g"])
def test_nabla_of_a_function_without_its_variable_is_an_error_not_a_loss_gradient(tex):
    with pytest.raises(TexError, match=r"needs the variable below, as in \\nabla_\{W\^2\} .* at column 5"):
        translate(tex, SYMBOLS, [], NAMES)


def test_a_chain_drafted_link_by_link_keeps_its_quantifier_on_every_link():
    from symbackprop.extract import _chains_split
    tex = r"\nabla A_k = \nabla H_k \odot g'(A_k) = \foo \quad \forall k = 1(1)\overline{L-1}"
    ((first, *_), (second, *_)) = _chains_split([(tex, 3, None, tex)], SYMBOLS, [])
    assert first == r"\nabla A_k = \nabla H_k \odot g'(A_k) \quad \forall k = 1(1)\overline{L-1}"
    assert second == r"\nabla A_k = \foo \quad \forall k = 1(1)\overline{L-1}"
    (link,) = translate(first, SYMBOLS, [], NAMES)
    assert link.for_range == "k in 1..L - 1"


def test_a_d_written_against_a_quantity_is_the_loss_gradient_with_a_note():
    symbols = {"W": "weight", "b": "bias", "Z": "preactivation", "A": "activation", "J": "loss", "m": "batch"}
    (link,) = translate(r"dW^{[l]} = \frac{1}{m} dZ^{[l]} (A^{[l-1]})^T", symbols)
    assert (link.lhs, link.rhs) == ("grad(J, W[l])", "1 / m * grad(J, Z[l]) @ (A[l - 1]).T")
    assert "read dW[l] as the gradient of the loss J by W[l]" in link.notes
    (link,) = translate(r"x = d W + d", symbols)  # apart, or d alone: the letter d, as printed
    assert link.rhs == "d @ W + d"
    (link,) = translate(r"x = dW", {**symbols, "d": "target"})  # d is a name
    assert link.rhs == "d @ W"
    with pytest.raises(TexError, match="missing argument at column 8"):
        translate(r"x = dW^", symbols)


def test_a_matrix_product_mixed_with_an_elementwise_one_unparenthesised_is_noted():
    note = ("read W[k + 1].T @ grad(Lθ, a[k + 1]) ∘ g'(a[k]) left to right, as printed without parentheses "
            "(a matrix product and an elementwise one)")
    ((_, rhs, notes),) = read(r"x = W_{k+1}^T \cdot \nabla_{a_{k+1}} \odot g'(a_k)")
    assert rhs == "W[k + 1].T @ grad(Lθ, a[k + 1]) ∘ g'(a[k])" and note in notes
    ((_, rhs, notes),) = read(r"x = (W_{k+1}^T \cdot \nabla_{a_{k+1}}) \odot g'(a_k)")
    assert not any("left to right" in n for n in notes)


def test_nabla_of_a_transposed_quantity_is_the_transposed_gradient():
    ((_, rhs, _),) = read(r"x = \nabla h_k^T W_k")
    assert rhs == "grad(Lθ, h[k]).T @ W[k]"


def test_the_draft_reads_the_pre_activation_and_activation_letters_from_a_forward_definition(tmp_path):
    import tomllib
    from symbackprop.extract import draft
    doc = tmp_path / "notes.md"
    doc.write_text("$$\\underline{a}_i = W_i \\cdot \\underline{h}_{i-1} + \\underline{b}_i$$\n\n"
                   "$$\\frac{\\partial C}{\\partial W_{kij}} = \\frac{\\partial C}{\\partial a_{ki}} h_{k-1,j}$$\n")
    result = draft(doc)
    symbols = tomllib.loads(result.toml)["symbols"]
    assert (symbols["a"], symbols["h"]) == ("preactivation", "activation") and "z" not in symbols
    assert "line 1: a = W h + b: a is the pre-activation, h the activation" in result.guesses
    doc.write_text("$$z^l = W^l a^{l-1} + b^l$$\n")  # the defaults: nothing to change
    symbols = tomllib.loads(draft(doc).toml)["symbols"]
    assert (symbols["z"], symbols["a"]) == ("preactivation", "activation")
