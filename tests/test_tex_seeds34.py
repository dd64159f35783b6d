"""The LaTeX constructs seeds 002-004 need: one test per construct, each with a malformed case."""
import tomllib

import pytest

from symbackprop.derivation.tex import TexError, translate
from symbackprop.extract import draft

SYMBOLS = {"W": "weight", "b": "bias", "z": "preactivation", "a": "activation", "y": "target",
           "F": "loss", "L": "depth", "n": "width", "sigma": "activation_function"}


def link(tex, symbols=SYMBOLS, defined=()):
    (only,) = translate(tex, symbols, defined)
    return only


def fails_at(tex, column, symbols=SYMBOLS):
    with pytest.raises(TexError) as info:
        translate(tex, symbols, ())
    assert str(info.value).endswith(f"column {column}"), str(info.value)
    return str(info.value)


def test_cdot_in_the_seeds_formulas_is_the_matrix_product():
    got = link(r"z_l = W_l \cdot a_{l-1} + b_l")
    assert got.rhs == "W[l] @ a[l - 1] + b[l]"
    assert r"read \cdot between W[l] and a[l - 1] as the matrix product" in got.notes
    got = link(r"x = \frac{\partial F}{\partial z_L} \cdot a_{l-1}^\top")
    assert got.rhs == "grad(F, z[L]) @ a[l - 1].T"
    fails_at(r"x = W_l \cdot", 14)


def test_two_vectors_side_by_side_are_an_elementwise_product_with_a_note():
    got = link(r"x = \sigma(z_L)(1 - \sigma(z_L))")
    assert got.rhs == "sigma(z[L]) ∘ (1 - sigma(z[L]))"
    assert ("read sigma(z[L]) and (1 - sigma(z[L])) side by side as the elementwise product "
            "(two vectors have no matrix product)") in got.notes
    assert link(r"x = W_l a_l").rhs == "W[l] @ a[l]"  # a matrix before a vector: the matrix product
    assert link(r"x = z_l (a_l)^T").rhs == "z[l] @ (a[l]).T"
    fails_at(r"x = a_L(1 - a_L", 16)


def test_an_asterisk_is_the_elementwise_product():
    got = link(r"x = W_{l+1}^\top \cdot d * (\sigma(z_l) * (1 - \sigma(z_l)))", defined=["d"])
    assert got.rhs == "W[l + 1].T @ d ∘ (sigma(z[l]) ∘ (1 - sigma(z[l])))"
    assert any(note.startswith("read * between sigma(z[l]) and") for note in got.notes)
    assert link("x = 2 * a_l").rhs == "2 * a[l]" and not [n for n in link("x = 2 * a_l").notes if "*" in n]
    fails_at("x = a_l * ", 11)


def test_kronecker_delta_when_delta_names_nothing():
    got = link(r"x = \epsilon_i\delta_{(l,L-1)} + \delta_{ij}")
    assert got.rhs == "epsilon[i] * (l == L - 1) + (i == j)"
    assert "read δ_(l,L - 1) as the Kronecker delta (l == L - 1): δ is not a name of [symbols]" in got.notes
    assert "read δ_(i,j) as the Kronecker delta (i == j): δ is not a name of [symbols]" in got.notes
    # δ a per-layer name: δ_{ij} packs a layer and an entry, only the parenthesised pair is Kronecker's
    assert link(r"x = \delta_{ij}", defined=["delta[2]"]).rhs == "delta[i, j]"
    assert link(r"x = \delta_{(l,L)}", defined=["delta[2]"]).rhs == "(l == L)"
    fails_at(r"x = \delta_{(l,)}", 15)


def test_norms_with_lvert_and_double_bars():
    assert link(r"F = \frac{1}{2}\lVert a^L - y \rVert^2").rhs == "1 / 2 * norm(a[L] - y) ** 2"
    assert link(r"F = \frac{1}{2} || a^L - y ||^2 + 1").rhs == "1 / 2 * norm(a[L] - y) ** 2 + 1"
    assert link(r"F = \Vert a^L \Vert").rhs == "norm(a[L])"
    assert "expected '\\rVert'" in fails_at(r"F = \lVert a^L", 15)
    assert "expected '||'" in fails_at(r"F = || a^L |", 12)


def test_the_derivative_of_an_entry_is_a_gradient():
    got = link(r"x = \frac{\partial \sigma(z^{L}_q)}{\partial W^{l}_{ij}} + \frac{\partial a_r^{L}}{\partial b_i^l}")
    assert got.rhs == "grad(sigma(z[L][q]), W[l][i, j]) + grad(a[L][r], b[l][i])"
    assert not [n for n in got.notes if "Jacobian" in n]
    assert link(r"x = \frac{\partial L}{\partial z_l}").rhs == "grad(L, z[l])"  # a number: its gradient
    assert link(r"x = \frac{\partial a_l}{\partial z_l}").rhs == "jacobian(a[l], z[l])"
    fails_at(r"x = \frac{\partial a_r}{\partial}", 34)


def test_an_array_of_entries_with_its_shape():
    got = link(r"a_l = (a_i^l)_{(n_l \times 1)}")
    assert (got.lhs, got.rhs, got.shape) == ("a[l]", "a[l]", ("n[l]", "1"))
    assert "read (a[l][i])_{n[l]×1} as the array of the entries a[l][i]: a[l]" in got.notes
    got = link(r"W_l = (w_{ij}^l)_{(n_l \times n_{l-1})}")
    assert (got.rhs, got.shape) == ("W[l]", ("n[l]", "n[l - 1]"))
    got = link(r"x = (a_l + b_l)_{(n_l \times 1)}")  # not an entry: the annotated expression itself
    assert (got.rhs, got.shape) == ("a[l] + b[l]", ("n[l]", "1"))
    assert "a shape is written m \\times n" in fails_at(r"a_l = (a_i^l)_{(\times 1)}", 17)


def test_the_draft_claims_the_loss_and_the_input():
    text = "$$x = a^{(1)}$$ and $$J(W,x,y) = \\frac{1}{2}\\lVert a^{(2)} - y \\rVert^2$$"
    data = tomllib.loads(draft("post.txt", text).toml)
    assert [c["tex"] for c in data["claim"]] == ["x = a^{(1)}", "J = \\frac{1}{2}\\lVert a^{(2)} - y \\rVert^2"]


def test_a_trailing_goal_is_dropped_with_a_note():
    got = link(r"F = -\frac{1}{N} \sum_{k=1}^N [y_k \ln p_k] \rightarrow \min_b")
    assert got.rhs == "-1 / N * sum((y[k] * log(p[k])), k in 1..N)"
    assert got.notes[-1] == r"dropped the trailing '\rightarrow \min_b': what is optimised, not a formula"
    assert "unknown macro \\rightarrow" in fails_at(r"F = a_L \rightarrow b", 9)


def test_a_product_with_a_function_of_an_entry_is_a_product_of_numbers():
    assert link(r"x = \sigma'(z^{L}_q)\frac{\partial z^{L}_q}{\partial W^{l}_{ij}}").rhs == \
        "sigma'(z[L][q]) * grad(z[L][q], W[l][i, j])"
    fails_at(r"x = \sigma'(z^{L}_q", 20)


def test_the_draft_gives_a_layer_letter_the_layers_where_its_quantities_exist():
    text = ("$$z_{l+1} = W_{l+1} \\cdot a_l + b_{l+1}$$ $$\\frac{\\partial F}{\\partial z_l} = "
            "W_{l+1}^\\top \\frac{\\partial F}{\\partial z_{l+1}}$$ $$\\frac{\\partial F}{\\partial z_L} = a_L - y$$"
            " $$F = \\frac{1}{2}\\|a_L - y\\|^2$$")
    data = tomllib.loads(draft("notes.txt", text).toml)
    assert data["symbols"]["L"] == "depth"
    assert [c.get("for") for c in data["claim"]] == ["l in 0..L - 1", "l in 1..L - 1", None, None]


def test_the_output_layer_letter_is_shifted_with_the_activations():
    text = "$$x = a^{(1)}$$ $$z^{(l+1)} = W^{(l)}a^{(l)} + b^{(l)}$$ $$J = \\frac{1}{2}\\|a^{(L)} - y\\|^2$$"
    data = tomllib.loads(draft("post.txt", text).toml)
    assert data["symbols"]["L"] == {"quantity": "depth", "shift": 1}
    assert data["claim"][1]["for"] == "l in 1..L - 1"


def test_an_activation_functions_definition_is_checked_at_the_preactivations():
    text = "$\\sigma(x) = \\frac{1}{1 + e^{-x}}$ and $\\sigma'(x) = \\sigma(x)(1 - \\sigma(x))$, $z_l = W_l a_{l-1} + b_l$"
    data = tomllib.loads(draft("notes.txt", text).toml)
    sigma, prime = data["claim"][:2]
    assert (sigma["tex"], sigma["text"]) == ("\\sigma(z^{(l)}) = \\frac{1}{1 + e^{-z^{(l)}}}", "\\sigma(x) = \\frac{1}{1 + e^{-x}}")
    assert "the definition of \\sigma(x) checked at x = z^{(l)}" in sigma["note"] and sigma["for"] == "l in 1..2"
    assert prime["tex"] == "\\sigma'(z^{(l)}) = \\sigma(z^{(l)})(1 - \\sigma(z^{(l)}))"
    # the letter is a name of the document (its input): the formula is a claim about it, as printed
    data = tomllib.loads(draft("notes.txt", "$x = a^{(1)}$, $\\sigma(x) = 1$, $z^{(2)} = W^{(1)} a^{(1)}$").toml)
    assert all(c["tex"] != "\\sigma(z^{(l)}) = 1" for c in data["claim"])


def test_a_name_defined_by_its_formula_is_a_definition_and_an_index_repeated_is_summed():
    text = ("$$x = a^{(1)}$$ $$z^{(l+1)} = W^{(l)}a^{(l)} + b^{(l)}$$ "
            "$$\\epsilon_i^{(l)} = \\epsilon_q^{(l+1)}W^{(l)}_{qi}\\sigma'(z_i^{(l)})$$ "
            "$$\\epsilon_i^{(L)} = (a^{(L)}_i - y_i)\\sigma'(z^{(L)}_i)$$ "
            "$$J = \\frac{1}{2}\\|a^{(L)} - y\\|^2$$")
    result = draft("post.txt", text, given={"tex": {"\\epsilon": "eps"}})
    data = tomllib.loads(result.toml)
    assert data["define"] == {
        "eps[l][i]": {"expr": "eps[l + 1][q] * W[l][q, i] * sigma'(z[l][i])", "for": "l in 2..L - 1"},
        "eps[L][i]": "(a[L][i] - y[i]) * sigma'(z[L][i])"}
    assert data["summation"] == "einstein" and "tex" not in data  # the spellings are the user's, merged later
    assert "line 1: \\epsilon_i^{(l)} names nothing else: read as its definition" in result.guesses
    # without the spelling the name is epsilon, defined all the same
    assert set(tomllib.loads(draft("post.txt", text).toml)["define"]) == {"epsilon[l][i]", "epsilon[L][i]"}


def test_verify_a_document_with_a_symbols_file_reads_the_draft_with_it(tmp_path, capsys):
    from symbackprop.cli import main
    post = tmp_path / "post.txt"
    post.write_text("$$x = a^{(1)}$$ $$z^{(l+1)} = W^{(l)}a^{(l)} + b^{(l)}$$ $$a^{(l+1)} = \\sigma(z^{(l+1)})$$ "
                    "$$J = \\frac{1}{2}\\|n_{W,b}(x) - y\\|^2$$ $$\\frac{\\partial J}{\\partial a^{(L)}} = n_{W,b}(x) - y$$")
    symbols = tmp_path / "s.toml"
    symbols.write_text('[symbols]\nn = "output"\n[tex]\n"n_{W,b}(x)" = "n"\n')
    code = main(["verify", str(post), "--symbols", str(symbols)])
    out = capsys.readouterr().out
    assert code == 0 and "5 proved" in out, out


def test_a_shape_written_as_a_names_subscript():
    got = link(r"x = \left[W^2_{2\times 4} \right]^\top a^2")
    assert got.rhs == "(W[2]).T @ a[2]"
    assert got.notes == ("the shape annotation 2×4 inside a side is not checked (only one on a whole side is)",)
    assert link(r"W^{(l)}_{2\times 4} = W^{(l)}").shape == ("2", "4")
    assert "a shape is written m \\times n" in fails_at(r"x = W^2_{2\times}", 10)


def test_a_layers_error_defined_by_the_document_is_checked_as_the_gradient_by_z():
    text = ("$$z^l = W^l a^{l-1} + b^l$$ $$C = \\frac{1}{2}\\|a^2 - t\\|^2$$ "
            "$$\\delta^2 \\equiv (a^2-t) \\circ \\sigma'(z^2)$$ $$\\delta ^1 [\\equiv W^2]^\\top \\delta^2 \\circ \\sigma'(z^1)$$")
    data = tomllib.loads(draft("post.txt", text).toml)
    errors = [c for c in data["claim"] if "checked as the gradient" in c["note"]]
    assert [(c["tex"], c["text"]) for c in errors] == [
        ("\\frac{\\partial C}{\\partial z^2} = (a^2-t) \\circ \\sigma'(z^2)", "\\delta^2 \\equiv (a^2-t) \\circ \\sigma'(z^2)"),
        ("\\frac{\\partial C}{\\partial z^1} = [ W^2]^\\top \\delta^2 \\circ \\sigma'(z^1)",
         "\\delta ^1 [\\equiv W^2]^\\top \\delta^2 \\circ \\sigma'(z^1)")]
    assert errors[0]["note"] == ("line 1; the definition of delta[2] checked as the gradient of C by z: "
                                 "a layer's error is that gradient")
    assert errors[1]["note"].endswith("; read as \\delta ^1 \\equiv [ W^2]^\\top \\delta^2 \\circ \\sigma'(z^1)")


def test_a_sum_of_a_negated_term():
    assert link(r"F = \frac{1}{N} \sum_{k=1}^N -\ln p_k").rhs == "1 / N * sum(-log(p[k]), k in 1..N)"
    fails_at(r"F = \sum_{k=1}^N -", 19)


def test_a_column_of_a_matrix_is_a_vector_in_a_product():
    got = link(r"x = (W_{l,\cdot,j})^T \nabla_{a_l} F")
    assert got.rhs == "(W[l][:, j]).T @ grad(F, a[l])"


@pytest.mark.parametrize("tex", [
    r"x = \sigma(z^2)(1 - \sigma(z^2))",
    r"x = a^2 * (1 - a^2)",
    r"x = \delta_{ij} + \delta_{(i,j)}",
    r"C = \frac{1}{2}\lVert a^2 - t \rVert^2 + \frac{1}{2} || a^1 ||^2",
    r"C = \frac{1}{n} \sum_{k=1}^{n} -\log a^2_k",
    r"x = \frac{\partial \sigma(z^{2}_q)}{\partial W^{2}_{ij}}",
])
def test_round_trip_of_these_constructs_through_the_project_printer(tmp_path, tex):
    """LaTeX → claim → the project's LaTeX printer → LaTeX reader: the same syntax tree."""
    import ast

    from symbackprop.derivation.language import parse
    from symbackprop.latex.claims import formula_latex
    from tests.test_tex import load_text
    d = load_text(tmp_path, "")
    symbols = {k: b.quantity for k, b in d.bindings.items()}
    for first in translate(tex, symbols, ()):
        printed = f"{formula_latex(first.lhs, d)} = {formula_latex(first.rhs, d)}"
        (back,) = translate(printed, symbols, ())
        for before, after in ((first.lhs, back.lhs), (first.rhs, back.rhs)):
            assert ast.dump(parse(before)) == ast.dump(parse(after)), (printed, before, after)


def test_an_iverson_bracket_as_the_printer_writes_it():
    assert link(r"x = a_i [i = j] + [l \neq L]").rhs == "a[i] * (i == j) + (l != L)"
    assert link(r"x = [a_l]").rhs == "(a[l])"
    assert "a condition is one relation" in fails_at(r"x = [i = j = k]", 12)


def test_a_binary_cross_entropy_guesses_one_output_unit():
    text = "$$F = -y \\ln a_L - (1 - y) \\ln(1 - a_L)$$ $$z_l = W_l a_{l-1} + b_l$$"
    result = draft("notes.txt", text)
    assert tomllib.loads(result.toml)["network"]["widths"][-1] == 1
    assert any("one output unit for the binary cross-entropy" in g for g in result.guesses)


def test_a_formula_with_its_own_quantifier_keeps_its_range():
    text = "$$z_k = W_k a_{k-1} + b_k \\quad \\forall k = 1(1)L$$ $$F = \\frac{1}{2}\\|a_L - y\\|^2$$"
    data = tomllib.loads(draft("notes.txt", text).toml)
    assert "for" not in data["claim"][0]


def test_an_index_summed_by_a_sum_is_no_sign_of_einstein_summation():
    from symbackprop.derivation.tex import TexLink
    from symbackprop.extract import _repeats_an_index
    symbols = {"W": "weight", "a": "activation"}
    summed = TexLink("a[2][i]", "sum(W[2][i, j] * a[1][j], j)", 0, 0)
    bounded = TexLink("a[2][i]", "sum(W[2][i, j] * a[1][j], j in 1..3)", 0, 0)
    implicit = TexLink("a[2][i]", "W[2][i, j] * a[1][j]", 0, 0)
    assert not _repeats_an_index([summed, bounded], symbols) and _repeats_an_index([implicit], symbols)


def test_a_shape_annotation_on_a_call_or_a_layer_is_no_entry():
    assert (link(r"x = [a^l]_{2\times 1}").rhs, link(r"x = [a^l]_{2\times 1}").shape) == ("a[l]", ("2", "1"))
    got = link(r"x = \sigma(z^l)_{2 \times 1}")
    assert (got.rhs, got.shape) == ("sigma(z[l])", ("2", "1"))
    assert "with one \\times" in fails_at(r"x = (a_i)_{(1 \times 2 \times 3)}", 24)


@pytest.mark.parametrize("seed, flagged", [
    ("003", {"L20-4a": "refuted", "L20-4b": "refuted", "L51-7": "ill-formed"}),  # y = n_{W,b}(x); ε^(l) for ε^(L)
    ("004", {"L58-12": "ill-formed", "L68-15": "ill-formed", "L68-16": "ill-formed", "L72-17": "ill-formed"}),
])
def test_verify_a_seed_with_its_small_symbols_file_flags_exactly_its_errata(seed, flagged, capsys):
    """∂L/∂z_l with L the depth, ∂z_l/∂W_l = a^T, ∂z_l/∂b_l = 1 and ∂F/∂z_L for ∂F/∂z_l in 004; the
    output called y and ε^(l) where ε^(L) belongs in 003: every other claim drafted is proved."""
    import re
    from pathlib import Path

    from symbackprop.cli import main
    seeds = Path(__file__).parent / "data" / "seeds"
    (document,) = seeds.glob(f"{seed}_*.txt")
    main(["verify", str(document), "--symbols", str(seeds / f"{seed}.symbols.toml")])
    out = capsys.readouterr().out
    rows = dict(re.findall(r"^(L\d+-\d+[a-z]?) .*?  (proved|refuted|ill-formed|undecided) ", out, re.M))
    assert rows and {k: v for k, v in rows.items() if v != "proved"} == flagged, out


def test_a_broken_symbols_entry_is_left_to_the_loader_to_name(tmp_path, capsys):
    from pathlib import Path

    from symbackprop.cli import main
    (document,) = (Path(__file__).parent / "data" / "seeds").glob("003_*.txt")
    mine = tmp_path / "mine.toml"
    mine.write_text('[symbols]\nz = { shift = "x" }\na = { quantity = "activation", shift = "one" }\n')
    assert main(["verify", str(document), "--symbols", str(mine)]) == 2
    err = capsys.readouterr().err
    assert f"{mine}:3: [symbols] a: shift must be an integer, not 'one'" in err and "Traceback" not in err
