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
