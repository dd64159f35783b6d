"""The LaTeX reader on matrices written with dots (bmatrix, pmatrix, …) and on one-letter [tex]
spellings in scripts: the exact reading, its note, and a located error for what cannot be read."""
import ast
import re

import pytest

from symbackprop.derivation.tex import TexError, translate

SYMBOLS = {"W": "weight", "b": "bias", "z": "preactivation", "a": "activation", "y": "target",
           "Loss": "loss", "L": "depth", "n": "width", "f": "activation_function"}

DIAGONAL = r"""\begin{bmatrix}
f'( z_1^L )  & & 0 \\
  &   \ddots & \\
 0    &  &   f'(z_{n_L}^L)
\end{bmatrix}"""


def link(tex, names=None):
    (only,) = translate(tex, SYMBOLS, [], names)
    return only


def test_a_diagonal_with_ddots_is_diag_of_its_entries_formula():
    read = link(r"\frac{\partial {\bf a}^L}{\partial {\bf b}^L} = " + DIAGONAL)
    assert read.rhs == "diag(f'(z[L]))"
    assert "read the bmatrix with f'(z[L][1]) … f'(z[L][n[L]]) on its diagonal, blank entries 0 as " \
           "diag(f'(z[L]))" in read.notes
    assert not any("taken to be" in note for note in read.notes)  # n_L is the width of layer L


def test_a_column_with_vdots_is_the_vector():
    read = link(r"v = \begin{pmatrix} a_1^l \\ \vdots \\ a_{n_l}^l \end{pmatrix}")
    assert read.rhs == "a[l]"
    assert "read the pmatrix with the column a[l][1] … a[l][n[l]] as a[l]" in read.notes


def test_a_row_with_cdots_is_the_transpose_and_an_unknown_end_is_noted():
    read = link(r"v = \begin{bmatrix} y_1 & y_2 & \cdots & y_m \end{bmatrix}")
    assert read.rhs == "y.T"
    assert "read the bmatrix with the row y[1] … y[m] as y.T (the entries 1..m taken to be all of them)" in read.notes


def test_a_full_matrix_with_its_corners_and_dots_is_the_matrix():
    read = link(r"M = \begin{bmatrix} W^l_{1,1} & \cdots & W^l_{1,n} \\ \vdots & \ddots & \vdots \\"
                r" W^l_{m,1} & \cdots & W^l_{m,n} \end{bmatrix}")
    assert read.rhs == "W[l]"
    assert any(note.startswith("read the bmatrix with the entries W[l][1, 1] … W[l][m, n] as W[l]")
               for note in read.notes)


def test_a_matrix_takes_scripts_and_products():
    read = link(r"x = \begin{bmatrix} f'(z_1^L) \\ \vdots \\ f'(z_{n_L}^L) \end{bmatrix}^T y")
    assert read.rhs == "f'(z[L]).T @ y"


@pytest.mark.parametrize("tex, message, column", [
    (r"v = \begin{bmatrix} y_1 & y_3 & \cdots & y_m \end{bmatrix}",
     "the entry y[3] does not follow the pattern of y[1] … y[m]", 27),
    (r"v = \begin{vmatrix} y_1 & \cdots & y_m \end{vmatrix}", "determinant", 5),
    (r"v = \begin{bmatrix} 1 & 2 \\ 3 & 4 \end{bmatrix}", "written out entry by entry", 5),
    (r"v = \begin{bmatrix} y_1 & \cdots \\ y_m \end{bmatrix}", "different numbers of entries", 5),
    (r"v = \begin{bmatrix} y_1 \\ \vdots \\ b_m \end{bmatrix}", "as the entries of one formula", 21),
    (r"v = \begin{bmatrix} \dots & 0 & y & 0 & \dots \end{bmatrix}", "which column holds the entry", 5),
])
def test_what_cannot_be_read_is_a_one_line_error_with_its_column(tex, message, column):
    with pytest.raises(TexError, match=re.escape(message)) as raised:
        translate(tex, SYMBOLS, [])
    assert raised.value.offset + 1 == column
    assert str(raised.value).endswith(f"at column {column}") and "\n" not in str(raised.value)


def test_a_diagonal_whose_entries_are_not_elementwise_is_an_error():
    with pytest.raises(TexError, match="not one formula applied entry by entry"):
        translate(r"D = \begin{bmatrix} \sum_{i=1}^{m} z_1^L & & 0 \\ & \ddots & \\ 0 & & \sum_{i=1}^{m} z_{n_L}^L"
                  r"\end{bmatrix}", SYMBOLS, [])


def test_a_one_letter_spelling_is_not_read_inside_scripts():
    read = link(r"\frac{\partial L}{\partial {\bf a}^L} = {\bf a}^{L} - y_{L}", {"L": "Loss"})
    assert (read.lhs, read.rhs) == ("grad(Loss, a[L])", "a[L] - y[L]")


def test_round_trip_through_the_project_printer(tmp_path):
    """LaTeX with a matrix → claim → the project's LaTeX printer → LaTeX reader: the same claim."""
    from symbackprop.derivation.language import parse
    from symbackprop.derivation.loader import load
    from symbackprop.latex.claims import formula_latex
    path = tmp_path / "d.toml"
    path.write_text('title = "t"\n[network]\nwidths = [3, 4, 2]\nhidden = "generic:f"\noutput = "generic:f"\n'
                    'loss = "half_sse"\n[symbols]\n' + "".join(f'{k} = "{v}"\n' for k, v in SYMBOLS.items()))
    d = load(path)
    first = link(r"\frac{\partial {\bf a}^L}{\partial {\bf b}^L} = " + DIAGONAL + r"(W^{L})^T")
    printed = f"{formula_latex(first.lhs, d)} = {formula_latex(first.rhs, d)}"
    again = link(printed)
    assert (first.lhs, first.rhs) == ("jacobian(a[L], b[L])", "diag(f'(z[L])) @ (W[L]).T")
    for before, after in ((first.lhs, again.lhs), (first.rhs, again.rhs)):
        assert ast.dump(parse(before)) == ast.dump(parse(after)), (before, after)


def test_i_with_a_size_is_the_identity_with_a_note():
    read = link(r"\frac{\partial {\bf z}^l}{\partial {\bf b}^l} = I_{n_l}")
    assert read.rhs == "diag(ones(n[l]))"
    assert "read I_n[l] as the n[l] × n[l] identity matrix" in read.notes


def test_the_derivative_of_any_function_is_read_as_the_losss_with_a_note():
    read = link(r"\frac{\partial \cdotp}{\partial {\bf b}^l} = \frac{\partial \cdotp}{\partial {\bf z}^l}")
    assert (read.lhs, read.rhs) == ("grad(Loss, b[l])", "grad(Loss, z[l])")
    assert "read ∂· (the derivative of any function) as that of the loss Loss" in read.notes
    with pytest.raises(TexError, match=r"stands for any function: name the loss .* at column 16"):
        translate(r"\frac{\partial \cdot}{\partial b^l} = 0", {"b": "bias"}, [])


def test_a_chain_rule_in_the_denominator_layout_transposes_its_jacobians():
    read = link(r"\frac{\partial L}{\partial {\bf b}^l} = \frac{\partial {\bf a}^l}{\partial {\bf z}^l}"
                r"\frac{\partial {\bf z}^{l+1}}{\partial {\bf a}^l} \frac{\partial L}{\partial {\bf z}^{l+1}}",
                {"L": "Loss"})
    assert read.rhs == "jacobian(a[l], z[l]).T @ jacobian(z[l + 1], a[l]).T @ grad(Loss, z[l + 1])"
    assert any(note.startswith("read the chain jacobian(a[l], z[l]) @ jacobian(z[l + 1], a[l]) @ grad(Loss, z[l + 1])"
                               " in the denominator layout") for note in read.notes)
    numerator = link(r"\frac{\partial L}{\partial {\bf z}^l} = \frac{\partial L}{\partial {\bf a}^l}"
                     r"\frac{\partial {\bf a}^l}{\partial {\bf z}^l}", {"L": "Loss"})
    assert numerator.rhs == "grad(Loss, a[l]) @ jacobian(a[l], z[l])"  # the other layout: as printed


def test_an_align_row_holding_a_matrix_continues_the_chain_and_bold_names_classify():
    import tomllib

    from symbackprop.extract import classify, draft
    text = ("$$ \\begin{align*}\n\\frac{\\partial L}{\\partial {\\bf b}^l} & = \\frac{\\partial L}{\\partial {\\bf z}^l} \\\\\n"
            "& = \\begin{bmatrix} f'(z_1^l) & & 0 \\\\ & \\ddots & \\\\ 0 & & f'(z_{n_l}^l) \\end{bmatrix} "
            "\\frac{\\partial L}{\\partial {\\bf z}^l}\n\\end{align*} $$")
    (claim,) = tomllib.loads(draft("post.txt", text).toml)["claim"]
    assert claim["tex"].count(" = ") == 2 and "& & 0" in claim["tex"] and "& =" not in claim["tex"]
    assert classify(r"{\bf a}^L = {\bf W}^L {\bf a}^{L-1}") == "forward definition"


def test_a_sum_over_the_examples_reads_each_examples_quantities_with_a_note():
    symbols = {**SYMBOLS, "N": "batch"}
    (read,) = translate(r"\frac{\partial L}{\partial {\bf b}^L} = \frac1N \sum_{i=1}^N " + DIAGONAL
                        + r"({\bf a}^L({\bf x}_i) - {\bf y}_i)", symbols, [], {"L": "Loss"})
    assert read.rhs == "1 / N * sum(diag(f'(z[L][:, i])) @ (a[L][:, i] - y[:, i]), i in 1..N)"
    assert "read a[L]({x}_i) as a[L] at example i".replace("{x}", "x") in read.notes
    assert any(note.startswith("read the sum over the examples i = 1..N of ") for note in read.notes)
    (entries,) = translate(r"s = \sum_{i=1}^{N} z^L_{k}", symbols, [])
    assert entries.rhs == "sum(z[L][k, i], i in 1..N)"
    (other,) = translate(r"s = \sum_{k=1}^{n_L} z^L_{k}", symbols, [])  # not over the examples: as printed
    assert other.rhs == "sum(z[L][k], k in 1..n[L])"


def test_a_vectors_derivative_by_an_entry_is_read_entry_by_entry_with_unit_vectors():
    read = link(r"\frac{\partial {\bf a}^L}{\partial b^L_j} = f'(z_j^L) {\bf e}_j")
    assert (read.lhs, read.rhs) == ("jacobian(a[L], b[L])[i, j]", "f'(z[L][j]) * (i == j)")
    assert "read the vector equation jacobian(a[L], b[L][j]) = f'(z[L][j]) * e[j] entry by entry: its entry i " \
           "(e_k the unit vector, its entry i is (i == k))" in read.notes
    chain = link(r"\frac{\partial {\bf a}^L}{\partial b^L_i} = \sum_{k=1}^{n_L} \frac{\partial {\bf a}^L}{\partial z_k^L}"
                 r"\frac{\partial z_k^L}{\partial b^L_i}")  # i taken: the entry is the next free letter
    assert (chain.lhs, chain.rhs) == ("jacobian(a[L], b[L])[j, i]",
                                      "sum(jacobian(a[L], z[L])[j, k] * grad(z[L][k], b[L][i]), k in 1..n[L])")
    entry = link(r"\frac{\partial z_k^L}{\partial b^L_j} = 0")
    assert entry.lhs == "grad(z[L][k], b[L][j])"  # an entry's derivative by an entry: a scalar
    matrix = link(r"\frac{\partial {\bf a}^L}{\partial b^L_j} = W^L {\bf a}^{L-1}")  # a matrix: left as printed
    assert (matrix.lhs, matrix.rhs) == ("jacobian(a[L], b[L][j])", "W[L] @ a[L - 1]")


def test_w_i_is_row_i_of_w_as_a_column_and_its_gradient_is_read_entry_by_entry():
    forward = link(r"z_k^L = ({\bf w}^L_k)^T \cdotp {\bf a}^{L-1} + b^L_k")
    assert forward.rhs.startswith("(W[L][k, :].T).T ")
    assert "read w^L_k as row k of W[L], as a column" in forward.notes
    (chain, _, last) = translate(
        r"\frac{\partial L}{\partial {\bf w}_i^l} = \frac{\partial {\bf z}^l}{\partial {\bf w}_i^l}"
        r"\frac{\partial L}{\partial {\bf z}^l} = \frac{\partial {\bf z}^l}{\partial {\bf w}_i^l} \frac{\partial L}"
        r"{\partial {\bf z}^l} = {\bf a}^{l-1} \frac{\partial L}{\partial b^l_i}", SYMBOLS, [], {"L": "Loss"})
    assert (chain.lhs, chain.rhs) == ("grad(Loss, W[l][i, j])", "jacobian(z[l], W[l][i, j]).T @ grad(Loss, z[l])")
    assert (last.lhs, last.rhs) == ("grad(Loss, W[l][i, j])", "a[l - 1][j] * grad(Loss, b[l][i])")
    assert any("entry by entry: its entry j" in note for note in last.notes)


def test_a_chain_with_an_unreadable_link_is_drafted_link_by_link():
    import tomllib

    from symbackprop.extract import draft
    text = ("$$ \\begin{align*}\n\\frac{\\partial C}{\\partial {\\bf w}_i^l} & = \\frac{\\partial C}{\\partial z^l_i} a^{l-1} \\\\\n"
            "& = \\begin{bmatrix} \\dots & 0 & {\\bf a}^{l-1} & 0 & \\dots \\end{bmatrix} \\delta^l \\\\\n"
            "& = z^l\n\\end{align*} $$")
    result = draft("post.txt", text)
    claims = tomllib.loads(result.toml)["claim"]
    assert [c["tex"].split(" = ")[1][:12] for c in claims] == ["\\frac{\\parti", "\\begin{bmatr", "z^l"]
    assert all("of the chain at line 2 (the chain cannot be read as a whole)" in c["note"] for c in claims)  # its first row
    assert len(result.unreadable) == 1 and "which column holds the entry" in result.unreadable[0]


def test_the_documents_denominator_layout_transposes_every_jacobian_of_two_vectors(tmp_path):
    import tomllib

    from symbackprop.derivation.loader import load
    from symbackprop.extract import draft
    (read,) = translate(r"\frac{\partial {\bf a}^L}{\partial {\bf b}^L} = " + DIAGONAL, SYMBOLS, [], layout="denominator")
    assert read.lhs == "jacobian(a[L], b[L]).T"
    assert "read ∂a[L]/∂b[L] in the document's denominator layout: jacobian(a[L], b[L]).T" in read.notes
    (entry,) = translate(r"\frac{\partial {\bf a}^L}{\partial b^L_j} = f'(z_j^L) {\bf e}_j", SYMBOLS, [],
                         layout="denominator")
    assert entry.lhs == "jacobian(a[L], b[L])[i, j]"  # by an entry: the same in both layouts
    (chain,) = translate(r"x = \frac{\partial {\bf z}^l}{\partial {\bf b}^l} \frac{\partial L}{\partial {\bf z}^l}",
                         SYMBOLS, [], {"L": "Loss"}, layout="denominator")
    assert chain.rhs == "jacobian(z[l], b[l]).T @ grad(Loss, z[l])"  # transposed once
    with pytest.raises(TexError, match="layout must be one of numerator, denominator"):
        translate("x = 1", SYMBOLS, [], layout="rows")
    text = ("$$ \\frac{\\partial C}{\\partial b^l} = \\frac{\\partial z^l}{\\partial b^l} \\frac{\\partial C}{\\partial z^l} $$\n\n"
            "$$ \\frac{\\partial a^l}{\\partial z^l} = \\operatorname{diag}(\\sigma'(z^l)) $$\n")
    result = draft("post.txt", text)
    data = tomllib.loads(result.toml)
    assert data["derivative_layout"] == "denominator"
    assert any(g.startswith("derivatives in the denominator layout (line 1") for g in result.guesses)
    path = tmp_path / "draft.toml"
    path.write_text(result.toml, encoding="utf-8")
    d = load(path)
    assert not d.errors and d.derivative_layout == "denominator"
    assert [c.lhs for c in d.claims][-1] == "jacobian(a[l], z[l]).T"
    path.write_text(result.toml.replace('derivative_layout = "denominator"', 'derivative_layout = "rows"'))
    assert any("derivative_layout must be \"numerator\" or \"denominator\", not 'rows'" in e for e in load(path).errors)


def test_a_function_the_document_defines_is_written_out_where_it_is_applied():
    import tomllib

    from symbackprop.extract import draft
    text = ("Let $$g(x) = \\frac12 \\| x \\|^2$$ with $\\nabla g(x) = x$. Then\n\n"
            "$$ a^2 = g(z^2 - y) $$\n")
    claims = {c["id"][:3]: c for c in tomllib.loads(draft("post.txt", text).toml)["claim"]}
    applied = claims["L3-"]
    assert applied["tex"] == "a^2 = \\left( \\frac12 \\| (z^2 - y) \\|^2 \\right)"
    assert "g(…) written out by its definition at line 1: g(x) = \\frac12 \\| x \\|^2" in applied["note"]
    assert all("written out" not in c.get("note", "") for k, c in claims.items() if k != "L3-")  # ∇g(x): g itself


def test_a_list_with_dots_is_the_vector_of_its_entries_and_a_one_entry_matrix_is_parentheses():
    symbols = {"a": "preactivation", "h": "activation", "g": "activation_function", "Lθ": "loss", "y": "target"}
    names = {r"\mathcal{L}(\theta)": "Lθ"}
    column, listed = translate(
        r"\nabla_{a_i} \mathcal{L}(\theta) = \begin{bmatrix} \frac{\partial \mathcal{L}(\theta)}{\partial h_{i,1}}"
        r" g'(a_{i,1}) \\ \vdots \\ \frac{\partial \mathcal{L}(\theta)}{\partial h_{i,n}} g'(a_{i,n}) \end{bmatrix}"
        r" = \nabla_{h_i} \mathcal{L}(\theta) \odot [\dots, g'(a_{i,k}), \dots]", symbols, [], names)
    assert column.rhs in ("(grad(Lθ, h[i]) * g'(a[i]))", "grad(Lθ, h[i]) * g'(a[i])")  # ∂L/∂h_{i1}: entry 1 of ∂L/∂h_i
    assert listed.rhs == "grad(Lθ, h[i]) ∘ g'(a[i])"
    assert "read [… g'(a[i][k]) …] as the vector of the entries g'(a[i][k]) over k: g'(a[i])" in listed.notes
    (paren,) = translate(r"v = - \begin{pmatrix} y - h_2 \end{pmatrix}", symbols, [])
    assert paren.rhs == "-(y - h[2])" and "read the pmatrix with the one entry y - h[2] as parentheses" in paren.notes
    with pytest.raises(TexError, match=r"write \[\\dots, x_k, \\dots\] .* at column 7"):
        translate(r"e_k = [\dots, 0, 1, 0, \dots]^T", symbols, [])


def test_a_differentiated_letter_is_the_drafts_unspecified_activation_function():
    import tomllib

    from symbackprop.extract import draft
    text = "$$ \\frac{\\partial a^2}{\\partial z^2} = \\operatorname{diag}(f'(z^2)) $$\n"
    result = draft("post.txt", text)
    data = tomllib.loads(result.toml)
    assert (data["network"]["hidden"], data["network"]["output"], data["symbols"]["f"]) == \
        ("generic:f", "generic:f", "activation_function")
    assert "every layer's activation is generic:f" in result.guesses


def test_an_array_in_brackets_reads_as_a_matrix_with_its_column_spec_ignored():
    read = link(r"v = \left[\begin{array}{c} a_1^l \\ \vdots \\ a_{n_l}^l \end{array}\right]")
    assert read.rhs in ("a[l]", "(a[l])")
    assert "read the array with the column a[l][1] … a[l][n[l]] as a[l]" in read.notes


def test_a_matrix_with_more_explicit_entries_and_dotted_rows_checks_each_entrys_place():
    body = (r"W^l_{1,1} & W^l_{1,2} & \dots & W^l_{1,n} \\ \vdots & \vdots & \ddots & \vdots \\"
            r" W^l_{m,1} & W^l_{m,2} & \dots & W^l_{m,n}")
    read = link(r"M = \begin{bmatrix} " + body + r" \end{bmatrix}")
    assert read.rhs == "W[l]"
    with pytest.raises(TexError, match=re.escape("the entry W[l][m, 3] does not follow the pattern")):
        translate(r"M = \begin{bmatrix} " + body.replace("W^l_{m,2}", "W^l_{m,3}") + r" \end{bmatrix}", SYMBOLS, [])


def test_a_column_of_iverson_brackets_is_the_unit_vector():
    symbols = {"ŷ": "output", "Lθ": "loss", "ell": "label", "p": "width"}
    (read,) = translate(r"v = \begin{bmatrix} -(\mathbb{1}_{\ell=1} - \hat{y}_1) \\ -(\mathbb{1}_{\ell=2} - \hat{y}_2) \\"
                        r" \vdots \\ -(\mathbb{1}_{\ell=p} - \hat{y}_p) \end{bmatrix}", symbols, [], {r"\hat{y}": "ŷ"})
    assert read.rhs in ("-(diag(ones(p))[:, ell] - ŷ)", "(-(diag(ones(p))[:, ell] - ŷ))")
    assert any(note.startswith("read the bmatrix with the column -((ell == 1) - ŷ[1]) … -((ell == p) - ŷ[p]) as ")
               for note in read.notes)
