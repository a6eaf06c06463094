r"""Checks of the matrix-form backward pass that scale with the sizes.

* ``numpy-backprop``: an independent reverse pass over the same graph that
  reads only each operation's numpy ``forward`` and ``vjp`` (never the
  symbolic rules), compared with every step's value;
  error = max |a - b| / max(1, |b|), tolerance :data:`VJP_TOL`.
* ``finite-difference``: along :data:`DIRECTIONS` seeded random directions d
  of all parameters (and asked inputs) at once (normal entries; a matrix's
  part is an outer product of normal vectors), the central difference
  (L(θ + h d) - L(θ - h d)) / 2h with h = :data:`FD_STEP` against
  <gradient, d>; error = |fd - <g, d>| / max(1, |<g, d>|), tolerance
  :data:`FD_TOL`.  Two forward passes per direction, whatever the sizes.

A check over its tolerance is a failure; the caller turns it into an error.

>>> from derive.engine.tgraph import TGraph
>>> from derive.engine.reverse import reverse
>>> g = TGraph()
>>> W = g.leaf("W", (2, 2), "parameter"); x = g.leaf("x", (2,), "input")
>>> L = g.define("L", g.apply("sum", g.apply("tanh", g.apply("matmul", W, x))), kind="loss")
>>> leaves = {"W": np.array([[0.1, 0.2], [0.3, -0.4]]), "x": np.array([1.0, -1.0])}
>>> d = reverse(g, g.forward(leaves))
>>> [(c["method"], c["passed"]) for c in checks(g, leaves, d)]
[('numpy-backprop', True), ('finite-difference', True)]
"""
from __future__ import annotations

import numpy as np

from .tgraph import Apply, Const, Ref, TGraph
from .tensor_op import tensor_op

VJP_TOL = 1e-9
FD_TOL = 1e-6
FD_STEP = 1e-5
DIRECTIONS = 3


def numpy_backprop(g: TGraph, leaves: dict) -> dict:
    """dL/d(every named node) by the operations' numpy VJPs alone."""
    inner: dict = {}
    values = g.forward(leaves, keep_inner=inner)
    live = g.needs_grad()
    grads: dict = {g.loss: np.ones(())}

    def back(e, G):
        if isinstance(e, Ref):
            if e.name in live:
                grads[e.name] = grads.get(e.name, 0.0) + G
            return
        if isinstance(e, Const):
            return
        xs, out = inner[id(e)]
        op = tensor_op(e.op)
        for i, a in enumerate(e.args):
            if isinstance(a, Const):
                continue
            back(a, np.asarray(op.vjp(i, G, xs, out, e.pdict), dtype=float))

    for node in reversed(g.computed()):
        if node.name in grads and node.name in live:
            back(node.expr, np.broadcast_to(grads[node.name], node.shape).astype(float))
    return {k: np.broadcast_to(v, g.nodes[k].shape).astype(float) for k, v in grads.items() if k != g.loss}


def _direction(rng, shape: tuple) -> np.ndarray:
    """A random direction: normal entries for a vector, an outer product of
    normal vectors for a matrix (n + m draws instead of n m; still a generic
    direction for <gradient, d>)."""
    if len(shape) < 2:
        return rng.standard_normal(shape)
    out = rng.standard_normal(shape[0])
    for n in shape[1:]:
        out = np.multiply.outer(out, rng.standard_normal(n))
    return out


def checks(g: TGraph, leaves: dict, derivation, seed: int = 0) -> list:
    """The two ``checks`` records of a matrix-form derivation."""
    ref = numpy_backprop(g, leaves)
    worst = 0.0
    for s in derivation.steps:
        if s.target not in g.nodes:     # a named part of one line: checked through the lines it feeds
            continue
        b = ref.get(s.target)
        if b is None:
            b = np.zeros(s.shape)
        worst = max(worst, float(np.max(np.abs(s.value - b) / np.maximum(1.0, np.abs(b)))) if s.value.size else 0.0)
    out = [{"method": "numpy-backprop", "max_abs_err": worst, "passed": bool(worst <= VJP_TOL),
            "note": "matrix form against the operations' numpy VJPs"}]
    wrt = [n.name for n in g.of_kind("parameter")] + list(g.wanted_inputs)
    rng = np.random.default_rng(seed)
    fd_worst = 0.0
    for _ in range(DIRECTIONS):
        d = {n: _direction(rng, g.nodes[n].shape) for n in wrt}
        norm = np.sqrt(sum(float(np.sum(v * v)) for v in d.values())) or 1.0
        d = {n: v / norm for n, v in d.items()}
        plus = dict(leaves); minus = dict(leaves)
        for n in wrt:
            plus[n] = np.asarray(leaves[n], dtype=float) + FD_STEP * d[n]
            minus[n] = np.asarray(leaves[n], dtype=float) - FD_STEP * d[n]
        fd = (float(g.forward(plus)[g.loss]) - float(g.forward(minus)[g.loss])) / (2 * FD_STEP)
        an = 0.0
        for n in wrt:
            grad = derivation.gradient(n)
            if grad is not None:
                an += float(np.sum(grad * d[n]))
        fd_worst = max(fd_worst, abs(fd - an) / max(1.0, abs(an)))
    out.append({"method": "finite-difference", "max_rel_err": fd_worst, "passed": bool(fd_worst <= FD_TOL),
                "note": f"{DIRECTIONS} random directions, central differences, h = {FD_STEP:g}"})
    return out + list(derivation.conditions)
