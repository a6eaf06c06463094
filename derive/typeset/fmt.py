"""How numbers are shown: exact where exact, else to a stated precision.

Exact rationals with a short decimal expansion are shown as decimals
(``3/16`` -> ``0.1875``); other rationals as fractions; everything else to
``DIGITS`` significant digits.

>>> import sympy
>>> num_text(sympy.Rational(3, 16)), num_text(sympy.Rational(1, 3)), num_text(sympy.Float(0.29131261245))
('0.1875', '1/3', '0.291313')
>>> num_tex(sympy.Rational(-1, 3))
'-\\\\frac{1}{3}'
"""
from __future__ import annotations

import sympy

#: significant digits of every inexact number derive prints
DIGITS = 6
#: longest exact decimal expansion shown as a decimal
MAX_EXACT_DECIMALS = 10


def exact_decimal(v) -> str | None:
    """The finite decimal expansion of a rational, if short; else None."""
    if not isinstance(v, sympy.Basic):
        return None
    if v.is_Integer:
        return str(int(v))
    if not v.is_Rational:
        return None
    q = int(v.q)
    twos = fives = 0
    while q % 2 == 0:
        q //= 2
        twos += 1
    while q % 5 == 0:
        q //= 5
        fives += 1
    if q != 1:
        return None
    places = max(twos, fives)
    if places > MAX_EXACT_DECIMALS:
        return None
    scaled = int(v.p) * (10**places) // int(v.q)
    sign = "-" if scaled < 0 else ""
    digits = str(abs(scaled)).rjust(places + 1, "0")
    whole, frac = digits[:-places] if places else digits, digits[-places:] if places else ""
    return f"{sign}{whole}.{frac}" if frac else f"{sign}{whole}"


def is_exact(v) -> bool:
    return isinstance(v, sympy.Basic) and bool(v.is_Rational)


def num_text(v, digits: int = DIGITS) -> str:
    """A number for the terminal."""
    dec = exact_decimal(v)
    if dec is not None:
        return dec
    if is_exact(v):
        return f"{int(v.p)}/{int(v.q)}"
    return _sig(float(v), digits)


def num_tex(v, digits: int = DIGITS) -> str:
    """A number for LaTeX."""
    dec = exact_decimal(v)
    if dec is not None:
        return dec
    if is_exact(v):
        sign = "-" if v < 0 else ""
        return rf"{sign}\frac{{{abs(int(v.p))}}}{{{int(v.q)}}}"
    s = _sig(float(v), digits)
    if "e" in s:
        mant, exp = s.split("e")
        return rf"{mant} \times 10^{{{int(exp)}}}"
    return s


def approx_text(v, digits: int = DIGITS) -> str:
    """``1/3 ≈ 0.333333`` for inexact-looking fractions, else the number."""
    base = num_text(v, digits)
    if is_exact(v) and exact_decimal(v) is None:
        return f"{base} ≈ {_sig(float(v), digits)}"
    return base


def _sig(f: float, digits: int) -> str:
    if f == 0:
        return "0"
    s = f"{f:.{digits}g}"
    return s


def exact_string(v) -> str | None:
    """'3/16' for exact rationals (JSON's ``exact`` fields), else None."""
    if is_exact(v):
        return str(v)
    return None


def paren_negative(shown: str, tex: bool) -> str:
    """Wrap an already formatted negative number in parentheses, as a factor.

    >>> paren_negative("-0.35", tex=False), paren_negative("0.5", tex=True)
    ('(-0.35)', '0.5')
    """
    if not shown.startswith("-"):
        return shown
    return rf"\left({shown}\right)" if tex else f"({shown})"
