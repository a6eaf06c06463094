r"""SymPy printers set up once for derive's notation.

Symbols print with the names a worked solution uses (``w^{1}_{12}``,
``\frac{\partial L}{\partial z_{1}}``); the "with numbers" line of a step is
the same expression printed with each symbol replaced by its value, so what
is shown is exactly what was computed.

>>> import sympy
>>> x, w = sympy.symbols("x w", real=True)
>>> tex(w * x, {w: "w_{1}", x: "x_{1}"})
'w_{1} x_{1}'
>>> tex_with_numbers(w * x, {w: sympy.Rational(-1, 10), x: 1})
'\\left(-0.1\\right) \\cdot 1'
>>> text_with_numbers(w * x, {w: sympy.Rational(-1, 10), x: 1})
'(-0.1)*1'
"""
from __future__ import annotations

import re

import sympy
from sympy.printing.latex import LatexPrinter
from sympy.printing.str import StrPrinter

from derive.typeset.fmt import num_tex, num_text


class _NamedStr(StrPrinter):
    def __init__(self, names: dict, **settings):
        super().__init__(settings)
        self._names = names

    def _print_Symbol(self, expr):
        return self._names.get(expr, expr.name)


def person_terms(terms: list) -> list:
    """The terms of a sum in the order a person writes them: positive terms
    first, and in a weighted sum the products before lone symbols (its bias
    last: w_1 x_1 + w_2 x_2 + b_1, not b_1 + w_1 x_1 + w_2 x_2); otherwise
    SymPy's order.

    >>> b, w, x, v, u, y, o = sympy.symbols("b w x v u y o")
    >>> person_terms(list(sympy.Add.make_args(b + w * x + v * u)))
    [u*v, w*x, b]
    >>> person_terms(list(sympy.Add.make_args(b + w * x)))
    [b, w*x]
    >>> person_terms(list(sympy.Add.make_args(y - o)))
    [y, -o]
    """
    plus = [t for t in terms if not t.could_extract_minus_sign()]
    minus = [t for t in terms if t.could_extract_minus_sign()]
    weighted = [t for t in plus if isinstance(t, sympy.Mul) and len(t.free_symbols) >= 2]
    if len(weighted) >= 2:          # a weighted sum (θ + ρ v is a step from θ: left as it is)
        plus = weighted + [t for t in plus if t not in weighted]
    return plus + minus


class PersonOrder:
    """Printer mixin: a sum as a person writes it (:func:`person_terms`):
    y - o_1, not -o_1 + y; w_1 x_1 + b_1, not b_1 + w_1 x_1."""

    def _as_ordered_terms(self, expr, order=None):
        return person_terms(list(super()._as_ordered_terms(expr, order=order)))


class _Latex(PersonOrder, LatexPrinter):
    pass


class _NumberLatex(PersonOrder, LatexPrinter):
    """Prints symbols as given numbers, keeping every multiplication visible."""

    def __init__(self, numbers: dict):
        super().__init__({"mul_symbol": "dot"})
        self._numbers = numbers

    def _print_Symbol(self, expr, style="plain"):
        if expr in self._numbers:
            v = self._numbers[expr]
            s = num_tex(sympy.sympify(v))
            return rf"\left({s}\right)" if s.startswith("-") else s
        return super()._print_Symbol(expr, style)


def tex(expr, names: dict | None = None) -> str:
    """LaTeX of ``expr`` with our symbol names."""
    return _Latex({"symbol_names": names or {}}).doprint(expr)


def text(expr, names: dict | None = None) -> str:
    """Plain text (SymPy syntax) of ``expr``, symbols renamed by ``names``."""
    return _NamedStr(names or {}).doprint(expr)


_DOUBLE_TEX = re.compile(r"\\left\(\\left\((-[^()]*?)\\right\) ?\\right\)")
_DOUBLE_TXT = re.compile(r"\(\((-[^()]*)\)\)")


def tex_with_numbers(expr, numbers: dict) -> str:
    """LaTeX of ``expr`` with each symbol shown as its number, unevaluated."""
    return _DOUBLE_TEX.sub(r"\\left(\1\\right)", _NumberLatex(numbers).doprint(expr))


def text_with_numbers(expr, numbers: dict) -> str:
    """Plain text of ``expr`` with each symbol shown as its number."""
    shown = {}
    for s, v in numbers.items():
        t = num_text(sympy.sympify(v))
        shown[s] = f"({t})" if t.startswith("-") else t
    return _DOUBLE_TXT.sub(r"(\1)", _NamedStr(shown).doprint(expr))
