"""Reading a non-gradient problem's ``values`` overrides, refusing bad ones.

Values arrive from a YAML/JSON file (numbers, lists) or from ``--set``
(numbers as strings, lists as JSON); every refusal is a
:class:`~derive.engine.spec.SpecError` naming the value.

>>> given = Given({"n": "3"}, {"n": 5, "xs": [1, 2]})
>>> given.integer("n", lo=1), given.numbers("xs", length=2)
(3, [1, 2])
>>> Given({"m": 1}, {"n": 5})
Traceback (most recent call last):
...
derive.engine.spec.SpecError: values.m: unknown name; known: n
"""
from __future__ import annotations

import sympy

from derive.engine.parse import ExprError, number
from derive.engine.spec import SpecError


class Given:
    """Overrides checked against a problem's defaults (names, types, ranges)."""

    def __init__(self, values: dict | None, defaults: dict):
        self.defaults = defaults
        self.raw = dict(values or {})
        for name in sorted(self.raw):
            if name not in defaults:
                raise SpecError(f"values.{name}", "unknown name; known: " + ", ".join(sorted(defaults)))

    def get(self, name: str):
        return self.raw.get(name, self.defaults[name])

    def overridden(self, name: str) -> bool:
        return name in self.raw

    def number(self, name: str, lo=None, hi=None, raw=None, strict_lo: bool = False) -> sympy.Expr:
        """One exact number (short decimals stay exact) within [lo, hi]."""
        where = f"values.{name}"
        raw = self.get(name) if raw is None else raw
        if isinstance(raw, (list, dict)):
            raise SpecError(where, "expected a number")
        try:
            v = number(raw)
        except ExprError as exc:
            raise SpecError(where, str(exc)) from None
        if lo is not None and (v < lo or (strict_lo and v == lo)):
            raise SpecError(where, f"must be {'greater than' if strict_lo else 'at least'} {lo}, got {raw}")
        if hi is not None and v > hi:
            raise SpecError(where, f"must be at most {hi}, got {raw}")
        return v

    def integer(self, name: str, lo=None, hi=None, raw=None) -> int:
        v = self.number(name, lo, hi, raw)
        if not v.is_Integer:
            raise SpecError(f"values.{name}", f"must be a whole number, got {raw if raw is not None else self.get(name)}")
        return int(v)

    def numbers(self, name: str, length: int | None = None, min_length: int = 1, max_length: int = 10000,
                lo=None, hi=None, strict_lo: bool = False, integer: bool = False) -> list:
        """A flat list of exact numbers (whole numbers, as ints, if ``integer``)."""
        raw = self.get(name)
        where = f"values.{name}"
        if not isinstance(raw, (list, tuple)):
            raise SpecError(where, "expected a list of numbers")
        if length is not None and len(raw) != length:
            raise SpecError(where, f"expected {length} numbers, got {len(raw)}")
        if not min_length <= len(raw) <= max_length:
            raise SpecError(where, f"expected between {min_length} and {max_length} numbers, got {len(raw)}")
        out = []
        for k, item in enumerate(raw):
            try:
                v = self.number(name, lo, hi, raw=item, strict_lo=strict_lo)
            except SpecError as exc:
                raise SpecError(f"{where}[{k}]", exc.what) from None
            if integer and not v.is_Integer:
                raise SpecError(f"{where}[{k}]", f"must be a whole number, got {item}")
            out.append(int(v) if integer else v)
        return out
