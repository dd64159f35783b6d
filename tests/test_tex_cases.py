"""The LaTeX reader on case analyses, indicators and the prose around formulas: one test per
construct, each with the exact reading, the note of a guess, and a malformed case located."""
import tomllib

import pytest

from symbackprop.derivation.tex import TexError, translate
from symbackprop.extract import classify, draft

SYMBOLS = {"W": "weight", "b": "bias", "a": "preactivation", "h": "activation", "x": "input", "y": "output",
           "e": "onehot", "ell": "label", "C": "loss", "L": "depth", "p": "width", "g": "hidden_activation",
           "O": "output_activation"}


def links(tex):
    return [(link.lhs, link.rhs, link.notes) for link in translate(tex, SYMBOLS)]


def located(tex, column):
    with pytest.raises(TexError) as info:
        translate(tex, SYMBOLS)
    message = str(info.value)
    assert "\n" not in message and message.endswith(f"column {column}"), message
    return message


def test_cases_with_otherwise_is_the_iverson_bracket_times_the_value():
    tex = r"C = \begin{cases} \frac{1}{y_\ell} & \text{if } i = \ell \\ 0 & \text{otherwise} \end{cases}"
    assert links(tex) == [("C", "(i == ell) / (y[ell])", ())]
    tex = r"C = \begin{cases} 2 & i \neq j \\ 3 & \text{otherwise.} \end{cases}"
    assert links(tex) == [("C", "((i != j) * 2 + (i == j) * 3)", ())]


def test_several_conditions_are_read_as_disjoint_with_a_note():
    tex = r"C = \begin{cases} 1 & x_i > 0 \\ -1 & x_i < 0 \\ 0 & \text{otherwise} \end{cases}"
    assert links(tex) == [("C", "((x[i] > 0) + (x[i] < 0) * (-1))",
                           ("read the cases as disjoint conditions (x[i] > 0; x[i] < 0)",))]


def test_malformed_cases_are_located():
    located(r"C = \begin{cases} 1 & \text{if } i \\ 0 & \text{otherwise} \end{cases}", 34)  # no relation
    located(r"C = \begin{cases} 1 \\ 0 & \text{otherwise} \end{cases}", 19)  # no '&'
    assert "last case" in located(r"C = \begin{cases} 0 & \text{otherwise} \\ 1 & i = j \end{cases}", 19)


def test_indicator_subscript_is_an_iverson_bracket():
    assert links(r"C = -\frac{\mathbb{1}_{i=\ell}}{y_\ell}") == [("C", "-(i == ell) / (y[ell])", ())]
    assert links(r"C = \mathbf{1}_{\ell=2} + \mathbb{1}_{i \neq \ell}") == [("C", "(ell == 2) + (i != ell)", ())]
    assert links(r"C = \mathbf{1} + 1") == [("C", "1 + 1", ())]  # no subscript: the number


def test_ones_subscript_without_a_relation_is_a_column_of_ones_with_a_note():
    assert links(r"x = b \cdot \mathbf{1}_m^T") == [
        ("x", "b @ ones(m).T", ("read 1_m as the column of m ones",
                               r"read \cdot between b and ones(m).T as the matrix product"))]
    located(r"C = \mathbb{1}_{i=}", 18)
    located(r"C = \mathbb{1}_{i=j=k}", 20)


def test_therefore_and_leading_prose_are_dropped():
    assert links(r"\therefore C = y_\ell") == [("C", "y[ell]", ())]
    assert links(r"\text{Now, } C = y_\ell") == [("C", "y[ell]", ())]
    assert links(r"\text{softmax}(a_L) = y")[0][:2] == ("softmax(a[L])", "y")  # a function's name stays


def test_trailing_prose_is_dropped_with_a_note():
    tex = r"C = -\frac{1}{y_\ell} \text{ where } \mathbb{1}_{i=\ell} \text{ is an indicator defined as } u = v"
    assert links(tex) == [("C", "-1 / (y[ell])", (
        r"dropped the prose after the formula: \text{ where } \mathbb{1}_{i=\ell} \text{ is an indicator d…",))]
    tex = r"C = -\log y_\ell \text{ (} \ell = \text{true class label)}"
    assert links(tex) == [("C", "-log(y[ell])", (
        r"dropped the prose after the formula: \text{ (} \ell = \text{true class label)}",))]
    tex = r"C = y_\ell, \text{ recall } \frac{\partial}{\partial x} u = v"
    assert links(tex)[0][:2] == ("C", "y[ell]")


def test_text_and_separates_two_formulas():
    assert [l[:2] for l in links(r"x = h_0 \text{ and } C = -\log y_\ell")] == [("x", "h[0]"), ("C", "-log(y[ell])")]


def test_a_condition_in_prose_outside_cases_is_an_error():
    assert "condition" in located(r"C = 1 \text{ if } i = j", 7)


def test_underset_vector_mark_is_the_vector():
    assert links(r"C = \underset{\sim}{y}_\ell") == [("C", "y[ell]", ())]
    assert links(r"C = \text{softmax}(\underset{\sim}{\mathbf{a}}_L)_\ell")[0][:2] == ("C", "softmax(a[L])[ell]")
    located(r"C = \underset{k}{\max} y", 5)


def test_one_hot_subscripted_by_the_label_is_the_one_hot_vector_with_a_note():
    assert links(r"C = -\frac{1}{y_\ell} \underset{\sim}{e}_\ell") == [
        ("C", "-1 / (y[ell]) * e", ("read e_ell as the one-hot vector e of the label ell",))]
    assert links(r"C = e_i")[0][1] == "e[i]"  # an entry of it


def test_wide_tilde_over_a_declared_name_is_a_mark_with_a_note():
    assert links(r"C = \exp(\widetilde{\mathbf{a}_L})_\ell") == [
        ("C", "exp((a[L])[ell])", ("read a_L as layer L of a",
                                   r"read \widetilde{a[L]} as a[L]: a mark, as no name a[L]_tilde is declared"))]


def test_primed_index_of_a_sum():
    assert links(r"C = \sum_{i'=1}^p \exp(a_L)_{i'} + p")[0][1] == "sum(exp((a[L])[i_prime]), i_prime in 1..p) + p"


def test_activation_functions_are_called_and_cdot_after_a_weight_is_the_matrix_product():
    assert links(r"y = O(W_3 \cdot g(W_2 \cdot x + b_2) + b_3)")[0][1] == "O(W[3] @ g(W[2] @ x + b[2]) + b[3])"


def test_a_function_of_the_input_and_a_chain_that_names_a_function():
    ((lhs, rhs, notes),) = links(r"f(\underline{x}) = \underline{h}_L(\underline{x}) = O(\underline{a}_L(\underline{x}))")
    assert (lhs, rhs) == ("h[L]", "O(a[L])")
    assert "read h[L](x) as h[L]: the input x is the argument of every layer" in notes
    assert "read f(\\underline{x}) = h[L] = … as naming f(\\underline{x}); the chain's left side is h[L]" in notes


def test_derivative_of_a_scalar_expression_is_a_gradient():
    assert links(r"C = \frac{\partial (-\log y_\ell)}{\partial a_{L,i}}")[0][1] == "grad((-log(y[ell])), a[L][i])"


def test_classify_sees_through_decorations():
    assert classify(r"\underline{a}_i = W_i \underline{h}_{i-1}") == "forward definition"
    assert classify(r"\hat{y}_\ell = \frac{1}{2}") == "forward definition"
    assert classify(r"\underset{\sim}{\hat{y}} = 1") == "forward definition"
    assert classify(r"f(x) = \underline{h}_L(x) = O(a_L)") == "forward definition"
    assert classify(r"L = 3") == "other"  # a size, not the loss


def test_draft_continues_a_chain_across_displays_and_keeps_rows():
    text = ("$$\\begin{aligned} \\frac{\\partial}{\\partial y_i} C &= 1 \\\\ "
            "&= \\begin{cases} 1 & \\text{if } i = j \\\\ 0 & \\text{otherwise} \\end{cases} \\end{aligned}$$\n\n"
            "$$\\begin{aligned} &= 2 \\end{aligned}$$\n")
    result = draft("notes.txt", text)
    claims = tomllib.loads(result.toml)["claim"]
    assert [c["tex"] for c in claims] == [
        "\\frac{\\partial}{\\partial y_i} C = 1 \\\\ = \\begin{cases} 1 & \\text{if } i = j \\\\ 0 & "
        "\\text{otherwise} \\end{cases}",
        "\\frac{\\partial}{\\partial y_i} C = 2"]
    assert "continues the chain of line 1" in claims[1]["note"]
    assert "line 3: the display starts with '=': it continues the chain of line 1" in result.guesses


def test_a_chain_rule_in_the_numerator_layout_reads_its_first_gradient_as_a_row():
    ((lhs, rhs, notes),) = links(r"\frac{\partial C}{\partial W_{111}} = \frac{\partial C}{\partial y} "
                                 r"\frac{\partial y}{\partial a_3} \frac{\partial a_3}{\partial W_{111}}")
    assert (lhs, rhs) == ("grad(C, W[1][1, 1])", "jacobian(C, y) @ jacobian(y, a[3]) @ jacobian(a[3], W[1][1, 1])")
    assert any(n.startswith("read the chain grad(C, y) @ jacobian(y, a[3]) @ jacobian(a[3], W[1][1, 1]) in the "
                            "numerator layout") for n in notes)
    ((_, alone, _),) = links(r"x = \frac{\partial C}{\partial y}")  # not a chain: the gradient
    assert alone == "grad(C, y)"


def test_a_membership_in_a_real_space_is_the_sides_shape_and_is_checked(tmp_path):
    (link,) = links(r"a_1 = W_1 x + b_1 \in \mathbb{R}^{n_1}")
    assert link[:2] == ("a[1]", "W[1] @ x + b[1]")
    assert "read the membership ∈ ℝ^(n[1] × 1) as the shape of W[1] @ x + b[1] (checked)" in link[2]
    (matrix,) = translate(r"x = W_2 \in \mathbb{R}^{n_2 \times n_1}", SYMBOLS)
    assert matrix.shape == ("n[2]", "n[1]")
    located(r"x = W_2 \in \mathbb{C}^{2}", 9)
    located(r"x = W_2 \in \mathbb{R}^{2 \times}", 24)
    from symbackprop.derivation.check import Checker
    from symbackprop.derivation.loader import load
    path = tmp_path / "d.toml"
    path.write_text('[network]\nwidths = [3, 4, 2]\nhidden = "sigmoid"\noutput = "sigmoid"\nloss = "half_sse"\n'
                    '[symbols]\nW = "weight"\nb = "bias"\nz = "preactivation"\na = "activation"\nn = "width"\n'
                    '[[claim]]\nid = "Right"\ntex = \'z_1 = W_1 a_0 + b_1 \\in \\mathbb{R}^{n_1}\'\n'
                    '[[claim]]\nid = "Wrong"\ntex = \'z_1 = W_1 a_0 + b_1 \\in \\mathbb{R}^{n_0}\'\n', encoding="utf-8")
    d = load(str(path))
    right, wrong = (Checker(d).check_claim(c).verdict for c in d.claims)
    assert (right.status, wrong.status) == ("proved", "ill-formed")


def test_a_layers_activation_function_is_the_files_one_function_with_a_note():
    ((lhs, rhs, notes),) = links(r"h_k = g_k(a_k)")
    assert (lhs, rhs) == ("h[k]", "g(a[k])")
    assert "read g_k(…) as g(…): [symbols] gives one hidden activation for every layer" in notes


def test_batch_matrices_are_forward_definitions():
    assert classify(r"A_0 = X") == "forward definition"
    assert classify(r"\hat{Y} = \text{softmax}(A_L)") == "forward definition"


def test_a_bracket_holding_a_relation_is_an_iverson_bracket():
    assert links(r"C = -([\ell = i] - y_i)") == [("C", "-((ell == i) - y[i])", ())]
    assert links(r"C = [x_1 > 0] \cdot 2")[0][1] == "(x[1] > 0) * 2"
    assert links(r"C = [a_L]_\ell")[0][1] == "(a[L])[ell]"  # no relation: a bracket
    located(r"C = [i = j = k]", 12)


def test_round_trip_of_cases_indicators_and_marks_through_the_project_printer(tmp_path):
    """LaTeX → claim → the project's LaTeX printer → LaTeX reader: the same syntax tree."""
    import ast

    from symbackprop.derivation.language import parse
    from symbackprop.derivation.loader import load
    from symbackprop.latex.claims import formula_latex
    path = tmp_path / "d.toml"
    path.write_text('[network]\nwidths = [3, 4, 2]\nhidden = "generic:g"\noutput = "softmax"\nloss = "cross_entropy"\n'
                    '[symbols]\nW = "weight"\nb = "bias"\na = "preactivation"\nh = "activation"\nx = "input"\n'
                    '"ŷ" = "output"\ne = "onehot"\nell = "label"\nC = "loss"\nL = "depth"\ng = "hidden_activation"\n'
                    'n = "width"\n[tex]\n"\\\\hat{y}" = "ŷ"\n', encoding="utf-8")
    d = load(path)
    symbols = {k: b.quantity for k, b in d.bindings.items()}
    for tex in (r"C = \begin{cases} \frac{1}{\hat{y}_\ell} & \text{if } i = \ell \\ 0 & \text{otherwise} \end{cases}",
                r"C = -(\mathbb{1}_{\ell=i} - \hat{y}_i) \text{ where } i \text{ is any unit}",
                r"C = \text{softmax}(\underset{\sim}{a}_L)_\ell - \underset{\sim}{e}_\ell",
                r"h_k = g_k(a_k)", r"x = b_k \cdot \mathbf{1}_n^T"):
        for link in translate(tex, symbols, (), d.tex_names):
            printed = f"{formula_latex(link.lhs, d)} = {formula_latex(link.rhs, d)}"
            (back,) = translate(printed, symbols, (), d.tex_names)
            assert ast.dump(parse(back.lhs)) == ast.dump(parse(link.lhs)), printed
            assert ast.dump(parse(back.rhs)) == ast.dump(parse(link.rhs)), printed


def test_a_symbols_file_with_unicode_names_and_spellings_reaches_the_draft():
    from pathlib import Path

    from symbackprop.extract import load_document
    root = Path(__file__).parent / "data" / "seeds"
    (seed,) = root.glob("001_*.txt")
    d = load_document(seed, root / "001.symbols.toml")
    assert d.bindings["ŷ"].quantity == "output" and d.tex_names["\\mathcal{L}(\\theta)"] == "Lθ"
    assert d.spec.widths == (3, 4, 3, 2) or list(d.spec.widths) == [3, 4, 3, 2]


def test_a_quantifier_printed_just_before_a_display_is_its_range():
    text = ("- $\\forall i = 1(1)L$ , the pre-activation at layer $i$ is\n\n"
            "$$a_i = W_i h_{i-1} + b_i$$\n\n"
            "and far below, after another display,\n\n$$h_0 = x$$\n\n$$h_i = g(a_i)$$\n")
    claims = tomllib.loads(draft("notes.txt", text).toml)["claim"]
    assert claims[0]["tex"] == "a_i = W_i h_{i-1} + b_i \\quad \\forall i = 1(1)L"
    assert "the quantifier \\forall i = 1(1)L printed before the display (line 1) applied to it" in claims[0]["note"]
    assert claims[0]["text"].startswith("a_i = W_i h_{i-1} + b_i")
    assert [c["tex"] for c in claims[1:]] == ["h_0 = x", "h_i = g(a_i)"]  # a display between: not theirs


def test_a_membership_with_nothing_after_it_is_located():
    located(r"C = x \in", 7)


def test_the_output_width_is_a_size_a_sum_runs_up_to(tmp_path):
    symbols = {**SYMBOLS, "p": "output_width"}
    (link,) = translate(r"C = \sum_{i=1}^p y_i", symbols)
    assert (link.rhs, link.notes) == ("sum(y[i], i in 1..p)", ())  # a size: the sum as printed
    from symbackprop.derivation import verify
    path = tmp_path / "d.toml"
    path.write_text('[network]\nwidths = [3, 4, 2]\nhidden = "sigmoid"\noutput = "softmax"\nloss = "cross_entropy"\n'
                    '[symbols]\n"ŷ" = "output"\np = "output_width"\n'
                    '[[claim]]\nid = "S"\nlhs = "sum(ŷ[i], i in 1..p)"\nrhs = "1"\n', encoding="utf-8")
    assert [r.verdict.status for r in verify(str(path)).results] == ["proved"]
