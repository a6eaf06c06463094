"""The terminal's reading of derive's own LaTeX (the operations' textbook
derivations): no command, brace or caret of the source is left, and the lines a
reader checks read as maths."""
from __future__ import annotations

import pytest

import derive.engine.nn_ops  # noqa: F401  (registers the operations)
from derive.engine.tensor_op import TENSOR_OPS
from derive.typeset.plaintext import to_text

LINES = [(name, line) for name, op in TENSOR_OPS.items() for line in op.extra.get("derivation", ())]


def test_there_are_derivations_to_read():
    assert len(LINES) > 30


@pytest.mark.parametrize("name, line", LINES, ids=[f"{n}-{k}" for k, (n, _) in enumerate(LINES)])
def test_no_latex_source_is_left(name, line):
    text = to_text(line)
    assert "\\" not in text, text
    assert text.count("{") == line.count(r"\{") and text.count("}") == line.count(r"\}"), text
    assert "^{" not in text and "_{" not in text and "  " not in text.replace("   ", ""), text


@pytest.mark.parametrize("tex, text", [
    (r"\frac{\partial p_i}{\partial x_j} = p_i\left(\delta_{ij} - p_j\right)", "∂p_i/∂x_j = p_i(δ_ij - p_j)"),
    (r"\frac{\partial L}{\partial K} = X \star \delta", "∂L/∂K = X ⋆ δ"),
    (r"\operatorname{erf}'(x) = \tfrac{2}{\sqrt{\pi}}\, e^{-x^2}", "erf'(x) = 2/√π e^(-x²)"),
    (r"\tfrac{1}{2}\left(1 + \operatorname{sign}(a - b)\right)", "(1/2) (1 + sign(a - b))"),
    (r"\sum_{c,a,b} X_{c,\,si+a,\,sj+b}\, K_{o,c,a,b}", "Σ_(c,a,b) X[c, si+a, sj+b] K[o,c,a,b]"),
    (r"\operatorname{ELU}'(x) = 1, \quad \alpha e^{x}", "ELU'(x) = 1,   α e^x"),
])
def test_lines_read_as_maths(tex, text):
    assert to_text(tex) == text


def test_the_terminal_shows_the_derivations_as_maths(capsys):
    from pathlib import Path

    from derive import cli
    assert cli.main(["solve", str(Path(__file__).resolve().parents[1] / "examples" / "mlp-softmax-ce.yaml")]) == 0
    out = capsys.readouterr().out
    block = out[out.index("Where these rules come from"):out.index("\nValues\n")]
    assert "  ∂p_i/∂x_j = p_i(δ_ij - p_j)    (softmax)" in block
    assert "\\frac" not in block and "\\partial" not in block
