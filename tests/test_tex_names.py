"""The [tex] table: a document's printed spelling of a name, read as that name."""
import pytest

from symbackprop.derivation import load, verify
from symbackprop.derivation.tex import TexError, spellings, translate

SYMBOLS = {"W": "weight", "a": "preactivation", "h": "activation", "ŷ": "output", "Lθ": "loss",
           "ell": "label", "e": "onehot"}
NAMES = {r"\mathcal{L}(\theta)": "Lθ", r"\mathcal{L}": "Lθ", r"\hat{y}": "ŷ"}


def test_a_spelling_is_read_as_its_name_and_scripts_still_apply():
    (link,) = translate(r"\frac{\partial \mathcal{L}(\theta)}{\partial W_2} = -\frac{1}{\hat y_\ell} e",
                        SYMBOLS, [], NAMES)
    assert link.lhs == "grad(Lθ, W[2])"
    assert "ŷ[ell]" in link.rhs


def test_the_longest_spelling_wins_and_braces_and_spaces_do_not_matter():
    (with_argument,) = translate(r"\mathcal{L}(\theta) = 0", SYMBOLS, [], NAMES)
    (bare,) = translate(r"\mathcal { L } = 0", SYMBOLS, [], NAMES)
    assert with_argument.lhs == bare.lhs == "Lθ"
    assert [name for _, name, _ in spellings(NAMES)][0] == "Lθ"
    assert len(spellings(NAMES)[0][0]) > len(spellings(NAMES)[-1][0])


def test_spellings_inside_macro_arguments_and_groups():
    (link,) = translate(r"\frac{\partial}{\partial \hat{y}_i} \mathcal{L}(\theta) = {\hat{y}_i}", SYMBOLS, [], NAMES)
    assert link.lhs == "grad(Lθ, ŷ[i])" and link.rhs in ("ŷ[i]", "(ŷ[i])")


def test_without_the_table_the_printed_name_is_not_guessed():
    with pytest.raises(TexError, match="does not map"):
        translate(r"\mathcal{L}(\theta) = 0", SYMBOLS, [])


def test_a_spelling_that_is_not_latex_is_a_one_line_error():
    with pytest.raises(TexError, match=r"\[tex\] '\\\\frac\{': cannot read the spelling") as raised:
        spellings({"\\frac{": "x"})
    assert "\n" not in str(raised.value)


def test_a_files_tex_table_is_used_by_its_claims_and_checked(tmp_path):
    path = tmp_path / "names.toml"
    path.write_text(r'''
title = "names"
[network]
widths = [3, 4, 2]
hidden = "sigmoid"
output = "softmax"
loss = "cross_entropy"
[symbols]
W = "weight"
z = "preactivation"
"ŷ" = "output"
"Lθ" = "loss"
e = "onehot"
[tex]
"\\mathcal{L}(\\theta)" = "Lθ"
"\\hat{\\mathbf{y}}" = "ŷ"
"\\mathrm{oops}" = "not a name"
[[claim]]
id = "D"
tex = '\frac{\partial \mathcal{L}(\theta)}{\partial z^2} = \hat{\mathbf{y}} - e'
[[claim]]
id = "S"
tex = '\frac{\partial \mathcal{L}(\theta)}{\partial z^2} = \hat{\mathbf{y}} + e'
expect = "refuted"
'''.lstrip(), encoding="utf-8")
    derivation = load(path)
    assert any("[tex] '\\\\mathrm{oops}': must name a claim-language name" in e for e in derivation.errors)
    assert derivation.tex_names == {r"\mathcal{L}(\theta)": "Lθ", r"\hat{\mathbf{y}}": "ŷ"}
    report = verify(str(path), timeout=20)
    assert {r.claim.id: r.verdict.status for r in report.results} == {"D": "proved", "S": "refuted"}


def test_each_seeds_symbols_file_is_small_names_and_network_only():
    import tomllib
    from pathlib import Path

    seeds = Path(__file__).parent / "data" / "seeds"
    files = sorted(seeds.glob("00?.symbols.toml"))
    assert [f.name[:3] for f in files] == ["000", "001", "002", "003", "004"]
    for path in files:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        assert set(data) <= {"network", "symbols", "tex"}, path.name
        spellings(data.get("tex", {}))  # every spelling reads
