"""Exact strings for the 'with numbers' line of a worked step."""
import sympy

from derive.engine.ops import relu
from derive.typeset.printing import tex_with_numbers, text_with_numbers

x = sympy.Symbol("x", real=True)
w = sympy.Symbol("w", real=True)
NEG = {x: sympy.Rational(-3, 10)}


def test_negative_argument_of_a_function_has_one_pair_of_parentheses():
    assert tex_with_numbers(sympy.tanh(x), NEG) == r"\tanh{\left(-0.3\right)}"
    assert tex_with_numbers(relu(x), NEG) == r"\operatorname{ReLU}\left(-0.3\right)"
    assert text_with_numbers(relu(x), NEG) == "relu(-0.3)"


def test_negative_factor_keeps_its_parentheses_and_the_product_sign():
    assert tex_with_numbers(w * x, {**NEG, w: 2}) == r"2 \cdot \left(-0.3\right)"
    assert text_with_numbers(w * x, {**NEG, w: 2}) == "2*(-0.3)"


def test_exact_fraction_shown_as_fraction():
    assert tex_with_numbers(2 * x, {x: sympy.Rational(1, 3)}) == r"2 \cdot \frac{1}{3}"


def test_sums_are_written_as_a_person_writes_them():
    import sympy

    from derive.typeset.latex import latex
    o, y, w, g = sympy.symbols("o1 y w g", real=True)
    assert latex((y - o) ** 2 / 2) == r"\frac{\left(y - o_{1}\right)^{2}}{2}"      # not (-o_1 + y)^2 / 2
    assert latex(w - g) == "- g + w".replace("- g + w", "w - g")
    assert latex(-o - y) == "- o_{1} - y"                                          # nothing positive to lead
