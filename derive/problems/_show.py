"""Numbers as :class:`~derive.typeset.blocks.Math` cells, shared by the non-gradient problems.

>>> import sympy
>>> approx_math(sympy.Rational(4, 7)).text, approx_math(sympy.Rational(1, 4)).text
('4/7 ≈ 0.571429', '0.25')
>>> approx_math(5 * sympy.sqrt(2)).text
'5*sqrt(2) ≈ 7.07107'
"""
from __future__ import annotations

import sympy

from derive.typeset import blocks as B
from derive.typeset.fmt import approx_text, exact_string, num_tex, num_text


def num_math(v) -> B.Math:
    """A number: exact decimals or fractions where exact, else 6 significant digits."""
    return B.Math(num_tex(v), num_text(v))


def approx_math(v) -> B.Math:
    """A fraction or surd with its decimal beside it (4/7 ≈ 0.571429, 5*sqrt(2) ≈ 7.07107);
    other numbers as num_math."""
    if exact_string(v) and num_text(v) != approx_text(v):
        return B.Math(rf"{num_tex(v)} \approx {num_tex(sympy.Float(v, 15))}", approx_text(v))
    if isinstance(v, sympy.Basic) and v.is_number and not v.is_Rational and not v.is_Float and v.count_ops() < 20:
        f = v.evalf(30)
        return B.Math(rf"{sympy.latex(v)} \approx {num_tex(f)}", f"{sympy.sstr(v)} ≈ {num_text(f)}")
    return num_math(v)
