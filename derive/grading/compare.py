"""Formulas compared as functions: exactly where cheap, else at seeded points.

Shared by the hand-answer checker (:mod:`derive.grading.verdicts`) and the judges of
vector formulas and path sums (:mod:`derive.grading.judges`), so neither imports the
other.

>>> a, b = sympy.symbols("a b")
>>> same_function((a + b) ** 2, a**2 + 2*a*b + b**2, None), same_function(sympy.tanh(a), a, None)
(True, False)
"""
from __future__ import annotations

import math

import numpy as np
import sympy

from derive.budget import to_float
from derive.engine.ops import OPS

#: formula comparison: random points besides the problem's own point
FORMULA_POINTS = 8
FORMULA_SEED = 20240601
#: expressions larger than this are compared at points only (no expand)
EXACT_COMPARE_OPS = 200
#: ... or whose expansion would have more terms than this (a hostile (a + b)**64)
EXPAND_TERMS = 400

NUMPY_FUNCS = {name: op.numpy for name, op in OPS.items()}


def lambdify(symbols, expr):
    """A numpy function of ``symbols`` (derive's operations by their numpy form)."""
    return sympy.lambdify(symbols, expr, modules=[NUMPY_FUNCS, "numpy"])


def expanded_terms(expr, cap: int = 10**6) -> int:
    """An upper bound on the terms of ``sympy.expand(expr)``, found without
    expanding (capped at ``cap``): sums add, products multiply, a power of a
    sum of k terms to n has at most C(n + k - 1, n).

    >>> a, b, c = sympy.symbols("a b c")
    >>> expanded_terms((a + b) ** 3), expanded_terms((a + b) * (a + c) + c), expanded_terms((a + b + c) ** 64)
    (4, 5, 2145)
    """
    if expr.is_Add:
        return min(cap, sum(expanded_terms(x, cap) for x in expr.args))
    if expr.is_Mul:
        out = 1
        for x in expr.args:
            out = min(cap, out * expanded_terms(x, cap))
        return out
    if expr.is_Pow and expr.exp.is_Integer and expr.exp > 0:
        k = expanded_terms(expr.base, cap)
        return min(cap, math.comb(int(expr.exp) + k - 1, int(expr.exp))) if k > 1 else 1
    return 1


def same_function(a, b, key=None) -> bool:
    """a == b as functions: exact where cheap, else at the problem's point
    (``key.point()`` if a key is given) and FORMULA_POINTS seeded random
    points (finite at >= 3 of them)."""
    if a == b:
        return True
    diff = a - b
    if sympy.count_ops(diff) <= EXACT_COMPARE_OPS and expanded_terms(diff) <= EXPAND_TERMS:
        try:
            if sympy.expand(diff) == 0:
                return True
        except (TypeError, ValueError, RecursionError):
            pass
    syms = sorted(a.free_symbols | b.free_symbols, key=str)
    if not syms:
        try:
            return abs(to_float(diff)) <= 1e-12 * max(1.0, abs(to_float(b)))
        except ValueError:
            return False
    here = key.point() if key is not None else {}
    rng = np.random.default_rng(FORMULA_SEED)
    cols = []
    for s in syms:
        base = float(here.get(s, 0.5))
        r = rng.uniform(-1.5, 1.5, FORMULA_POINTS)
        r = np.where(np.abs(r) < 0.05, r + 0.3, r)
        cols.append(np.concatenate([[base], r]))
    with np.errstate(all="ignore"):
        try:
            va = np.broadcast_to(np.asarray(lambdify(syms, a)(*cols), dtype=float), cols[0].shape)
            vb = np.broadcast_to(np.asarray(lambdify(syms, b)(*cols), dtype=float), cols[0].shape)
        except (TypeError, ValueError, ZeroDivisionError, OverflowError):
            return False
    fin = np.isfinite(va) & np.isfinite(vb)
    if np.any(np.isfinite(va) != np.isfinite(vb)) or fin.sum() < 3:
        return False
    return bool(np.all(np.abs(va[fin] - vb[fin]) <= 1e-9 * np.maximum(1.0, np.abs(vb[fin]))))
