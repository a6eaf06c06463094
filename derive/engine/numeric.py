"""Numeric verification, independent of the symbolic derivation.

Two checks, both in plain numpy floats:

* ``numpy-backprop``: a second reverse pass that walks each node's expression
  tree with the table's numpy forms and numpy vector-Jacobian products
  (``Op.vjp``), sharing nothing with :mod:`derive.engine.backprop` but the graph;
* ``finite-difference``: central differences of the numpy forward pass.

Both work on arrays too, so the same code evaluates a batch of parameter sets.
A disagreement raises :class:`VerificationError`: derive never shows a
gradient it could not confirm.

>>> from derive.problems import load
>>> sol = load("mlp-relu-regression").solve()
>>> [c["passed"] for c in sol.checks]
[True, True]
"""
from __future__ import annotations

import numpy as np

from derive.engine.ops import op_of

#: tolerances of the checks (relative to max(1, |gradient|))
BACKPROP_TOL = 1e-9
FD_TOL = 1e-6
FD_STEP = 1e-6


class VerificationError(AssertionError):
    """The symbolic gradient disagrees with an independent computation."""


def _np_eval(expr, env: dict, cache: dict, kinks: list):
    if expr in cache:
        return cache[expr]
    if expr.is_Symbol:
        val = env[expr]
    elif expr.is_Number:
        val = float(expr)
    elif expr.is_Add:
        val = sum(_np_eval(a, env, cache, kinks) for a in expr.args)
    elif expr.is_Mul:
        val = 1.0
        for a in expr.args:
            val = val * _np_eval(a, env, cache, kinks)
    elif expr.is_Pow:
        base = _np_eval(expr.args[0], env, cache, kinks)
        exp = _np_eval(expr.args[1], env, cache, kinks)
        val = np.power(base, exp)
    else:
        op = op_of(expr)
        if op is None:
            raise VerificationError(f"no numpy form for {type(expr).__name__}")
        x = _np_eval(expr.args[0], env, cache, kinks)
        if op.name in ("relu", "step"):
            kinks.append(np.min(np.abs(x)))
        val = op.numpy(x)
    cache[expr] = val
    return val


def _np_backward(expr, g, env, cache, grads: dict):
    """Accumulate g * d expr / d symbol into grads[symbol] (numpy VJPs)."""
    if expr.is_Symbol:
        grads[expr] = grads.get(expr, 0.0) + g
        return
    if expr.is_Number:
        return
    if expr.is_Add:
        for a in expr.args:
            _np_backward(a, g, env, cache, grads)
        return
    if expr.is_Mul:
        vals = [cache[a] for a in expr.args]
        for i, a in enumerate(expr.args):
            if a.is_Number:
                continue
            others = 1.0
            for j, v in enumerate(vals):
                if j != i:
                    others = others * v
            _np_backward(a, g * others, env, cache, grads)
        return
    if expr.is_Pow:
        b, e = expr.args
        bv, ev, out = cache[b], cache[e], cache[expr]
        if not b.is_Number:
            _np_backward(b, g * ev * np.power(bv, ev - 1.0), env, cache, grads)
        if not e.is_Number:
            _np_backward(e, g * out * np.log(bv), env, cache, grads)
        return
    op = op_of(expr)
    x = expr.args[0]
    _np_backward(x, op.vjp(g, cache[x], cache[expr]), env, cache, grads)


def numpy_forward(graph, leaf_values: dict):
    """Forward pass in numpy floats; returns (values by name, smallest |relu arg|)."""
    env = {}
    kinks: list = []
    values = {}
    caches = {}
    for name, node in graph.nodes.items():
        if node.expr is None:
            v = np.asarray(leaf_values[name], dtype=float)
        else:
            cache: dict = {}
            v = _np_eval(node.expr, env, cache, kinks)
            caches[name] = cache
        env[node.symbol] = v
        values[name] = v
    nearest = float(min(kinks)) if kinks else float("inf")
    return values, nearest, caches, env


def numpy_backprop(graph, leaf_values: dict, wrt=None) -> dict:
    """Gradients of the loss by a numpy reverse pass over the expression trees."""
    values, _, caches, env = numpy_forward(graph, leaf_values)
    adj = {graph.nodes[graph.loss].symbol: np.ones_like(values[graph.loss])}
    for name in reversed(list(graph.nodes)):
        node = graph.nodes[name]
        if node.expr is None or node.symbol not in adj:
            continue
        grads: dict = {}
        _np_backward(node.expr, adj[node.symbol], env, caches[name], grads)
        for sym, g in grads.items():
            adj[sym] = adj.get(sym, 0.0) + g
    wrt = wrt if wrt is not None else graph.parameters
    return {p: np.asarray(adj.get(graph.nodes[p].symbol, 0.0) * np.ones_like(values[graph.loss]))
            for p in wrt}


def finite_differences(graph, leaf_values: dict, wrt=None, h: float = FD_STEP) -> dict:
    """Central differences (f(p+h) - f(p-h)) / 2h of the numpy forward pass."""
    wrt = wrt if wrt is not None else graph.parameters
    base = {k: np.asarray(v, dtype=float) for k, v in leaf_values.items()}
    out = {}
    for p in wrt:
        step = h * np.maximum(1.0, np.abs(base[p]))
        plus = dict(base, **{p: base[p] + step})
        minus = dict(base, **{p: base[p] - step})
        fp = numpy_forward(graph, plus)[0][graph.loss]
        fm = numpy_forward(graph, minus)[0][graph.loss]
        out[p] = (fp - fm) / (2 * step)
    return out


def verify(graph, leaf_values: dict, symbolic: dict, wrt=None) -> list:
    """Compare symbolic gradients (name -> number) with both checks.

    Returns the contract's ``checks`` list; raises VerificationError on a
    disagreement.  At a relu kink (an argument within a few steps of 0)
    finite differences are undefined: that check is reported as not
    applicable, with the reason, instead of passing or failing.
    """
    wrt = list(wrt if wrt is not None else symbolic)
    floats = {k: float(v) for k, v in leaf_values.items()}
    sym = {k: float(v) for k, v in symbolic.items()}
    bp = numpy_backprop(graph, floats, wrt)
    bp_err = max((abs(float(bp[p]) - sym[p]) / max(1.0, abs(sym[p])) for p in wrt), default=0.0)
    checks = [{"method": "numpy-backprop", "max_abs_err": _round_err(
        max((abs(float(bp[p]) - sym[p]) for p in wrt), default=0.0)),
        "passed": bool(bp_err <= BACKPROP_TOL)}]
    loss_values, nearest_kink, _, _ = numpy_forward(graph, floats)
    fd = finite_differences(graph, floats, wrt)
    # Central differences lose about eps |L| / step to rounding in the loss
    # itself; a large loss with a small gradient is judged against that floor.
    loss = abs(float(loss_values[graph.loss]))
    floor = {p: 64 * np.finfo(float).eps * loss / (FD_STEP * max(1.0, abs(floats[p]))) for p in wrt}
    fd_err = max((abs(float(fd[p]) - sym[p]) / max(1.0, abs(sym[p]), floor[p] / FD_TOL) for p in wrt), default=0.0)
    scale = max([1.0] + [abs(v) for v in floats.values()])
    if nearest_kink < 10 * FD_STEP * scale:
        checks.append({"method": "finite-difference", "max_rel_err": _round_err(fd_err),
                       "passed": None,
                       "note": "not applicable: a relu argument is at its kink (0), where the "
                               "derivative is defined as 0 and differences are undefined"})
    else:
        checks.append({"method": "finite-difference", "max_rel_err": _round_err(fd_err),
                       "passed": bool(fd_err <= FD_TOL)})
    failed = [c["method"] for c in checks if c["passed"] is False]
    if failed:
        worst = max(wrt, key=lambda p: abs(float(bp[p]) - sym[p]) + abs(float(fd[p]) - sym[p]))
        raise VerificationError(
            f"{graph.title or 'graph'}: symbolic gradient of {worst} = {sym[worst]!r} disagrees with "
            f"{' and '.join(failed)} (numpy {float(bp[worst])!r}, finite differences {float(fd[worst])!r})")
    return checks


def _round_err(e: float) -> float:
    """Errors are reported to 3 significant digits (they are noise-level)."""
    return float(f"{float(e):.3g}")


__all__ = ["verify", "numpy_backprop", "finite_differences", "numpy_forward",
           "VerificationError"]
