"""The small LaTeX reader for hand answers."""
import pytest

from derive.grading.latex_reader import LatexError, latex_to_expr

NAMES = {"a1", "o1", "y", "w1", "w5", "x1", "z1", "w2_11", "h1", "h_prev"}


@pytest.mark.parametrize("tex, out", [
    (r"$-0.35 \cdot a_1$", "-0.35*a1"),
    (r"(o_1 - y) a_1", "(o1-y)*a1"),
    (r"\frac{1}{2}(y - o_{1})^2", "((1)/(2))*(y-o1)**(2)"),
    (r"\sigma(w^{2}_{11} h_1)", "sigmoid(w2_11*h1)"),
    (r"\tanh(z_1)", "tanh(z1)"),
    (r"\operatorname{ReLU}(z_1)", "relu(z1)"),
    (r"h_{\text{prev}}", "h_prev"),
    (r"w_1 - 0.5 \times \left(-0.175\right)", "w1-0.5*(-0.175)"),
    (r"\sqrt{w_1}", "sqrt(w1)"),
])
def test_converts(tex, out):
    assert latex_to_expr(tex, NAMES) == out


@pytest.mark.parametrize("tex", [r"\frac{\partial L}{\partial w}", r"\int x", "{" * 60 + "x" + "}" * 60,
                                 "x" * 3000, r"\sqrt[3]{x}", "$a$ and $b$"])
def test_refuses(tex):
    with pytest.raises(LatexError):
        latex_to_expr(tex, NAMES)
